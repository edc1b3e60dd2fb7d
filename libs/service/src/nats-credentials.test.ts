import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromPublic, fromSeed } from "@nats-io/nkeys";
import { afterEach, expect, it } from "vitest";
import { inboxPrefixOf, natsUserName } from "./nats.js";
import { placeholderAuthorization, unheldPublicKey, writeNatsCredentials } from "./nats-credentials.js";
import { hostAgentUser, SERVICE_USERS } from "./nats-permissions.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "hangar-creds-"));
  dirs.push(d);
  return join(d, "creds");
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it("names each service's user, and a host agent's after its host", () => {
  expect(natsUserName("gateway")).toBe("gateway");
  expect(natsUserName("host-agent", "h1")).toBe("host-agent-h1");
  expect(() => natsUserName("host-agent")).toThrow(/host id/);
  expect(inboxPrefixOf("proxy")).toBe("_INBOX_proxy");
});

it("writes one private seed per user, the operator included, and admits exactly their public keys", async () => {
  const dir = tempDir();
  const creds = await writeNatsCredentials(dir, [...SERVICE_USERS, hostAgentUser("h1")]);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  for (const user of [...SERVICE_USERS.map((u) => u.user), "host-agent-h1", "operator"]) {
    const file = creds.credsFile(user);
    expect(statSync(file).mode & 0o777, user).toBe(0o600);
    const key = fromSeed(new TextEncoder().encode(readFileSync(file, "utf8").trim())).getPublicKey();
    expect(creds.authorization).toContain(`{ nkey: "${key}"`);
  }
  // One nkey per user: nobody else is in the block.
  expect(creds.authorization.match(/nkey:/g)).toHaveLength(SERVICE_USERS.length + 2);
});

it("keeps the seeds that exist, so a restarted platform keeps its credentials", async () => {
  const dir = tempDir();
  const first = await writeNatsCredentials(dir, SERVICE_USERS);
  const second = await writeNatsCredentials(dir, SERVICE_USERS);
  expect(second.authorization).toBe(first.authorization);
});

it("makes placeholder users under valid, stable public keys that no seed made", async () => {
  const key = unheldPublicKey("gateway");
  expect(fromPublic(key).getPublicKey()).toBe(key);
  expect(key).toMatch(/^U[A-Z2-7]{55}$/);
  expect(unheldPublicKey("gateway")).toBe(key);
  expect(unheldPublicKey("placement")).not.toBe(key);
  // The same block as real credentials, but for the keys.
  const real = await writeNatsCredentials(tempDir(), SERVICE_USERS);
  const withoutKeys = (conf: string) => conf.replace(/nkey: "U[A-Z2-7]{55}"/g, "nkey");
  expect(withoutKeys(placeholderAuthorization(SERVICE_USERS))).toBe(withoutKeys(real.authorization));
  expect(placeholderAuthorization(SERVICE_USERS)).toContain(`nkey: "${key}"`);
});
