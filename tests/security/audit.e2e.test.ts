// Issue 13, audit: every successful mutating call through the gateway is one AUDIT event with the
// token id, the action and the target, and `GET /v1/audit` shows an org its own events only. Two
// orgs make calls; each reads back exactly its own, with the right token ids and actions; refused
// calls (another org's app: 404; a read-only token's write: 403; a forged token: 401) leave the
// AUDIT stream's last sequence where it was. A registry push (/v2, the token as Basic password) is
// recorded under the app its repository belongs to; another org's push is refused and not recorded.
import { createHash } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helloConfig, startTestPlatform, type TestPlatform } from "../platform/harness.js";

interface AuditEvent {
  seq: number;
  token_id: string;
  token_kind: string;
  action: string;
  target: string;
  org: string;
  app: string;
  status: number;
}
interface AuditPage {
  events: AuditEvent[];
  next_before: number | null;
}
interface Org {
  token: string;
  tokenId: string;
  app: string;
  machineId: string;
}

let p: TestPlatform;
let nc: NatsConnection;
const orgs: Record<"acme" | "zeta", Org> = {} as never;

/** Creates org `slug` (as the operator) and, as its admin, an app and a machine (not launched). */
async function orgWithCalls(slug: string): Promise<Org> {
  const created = await p.api.ok<{ token: string; token_id: string }>("POST", "/orgs", { slug });
  const token = created.token;
  const app = `${slug}-web`;
  expect((await p.api.call("POST", "/apps", { app_name: app, org_slug: slug }, { token })).status).toBe(201);
  const machine = await p.api.call<{ id: string }>(
    "POST",
    `/apps/${app}/machines`,
    { config: helloConfig(), skip_launch: true },
    { token },
  );
  expect(machine.status).toBe(200);
  return { token, tokenId: created.token_id, app, machineId: machine.body.id };
}

async function auditOf(token: string, query = ""): Promise<{ status: number; body: AuditPage }> {
  return p.api.call<AuditPage>("GET", `/audit${query}`, undefined, { token });
}

const auditLastSeq = async () => (await (await jetstreamManager(nc)).streams.info("AUDIT")).state.last_seq;

beforeAll(async () => {
  p = await startTestPlatform();
  nc = await p.connectNats();
  orgs.acme = await orgWithCalls("acme");
  orgs.zeta = await orgWithCalls("zeta");
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await p?.close();
});

describe("the audit trail", () => {
  it("shows each org its own calls, newest first, with the token id, action and target", async () => {
    for (const slug of ["acme", "zeta"] as const) {
      const o = orgs[slug];
      const res = await auditOf(o.token);
      expect(res.status).toBe(200);
      const mine = res.body.events.filter((e) => e.token_id === o.tokenId);
      expect(mine.map((e) => [e.action, e.target, e.app])).toEqual([
        ["machine.create", o.machineId, o.app],
        ["app.create", o.app, o.app],
      ]);
      expect(
        mine.every((e) => e.org === slug && e.token_kind === "org" && e.status >= 200 && e.status < 300),
      ).toBe(true);
      // Nothing of the other org, not even the org's creation by the operator, which is the org's own.
      expect(res.body.events.every((e) => e.org === slug)).toBe(true);
      expect(res.body.events.map((e) => e.action)).toContain("org.create");
    }
  });

  it("answers another org's trail or app as not found", async () => {
    expect((await auditOf(orgs.acme.token, "?org=zeta")).status).toBe(404);
    expect((await auditOf(orgs.acme.token, `?app=${orgs.zeta.app}`)).status).toBe(404);
    const app = await auditOf(orgs.acme.token, `?app=${orgs.acme.app}`);
    expect(app.body.events.map((e) => e.action)).toEqual(["machine.create", "app.create"]);
  });

  it("shows the operator every org's calls", async () => {
    // The test platform's own set-up (its personal org) is in the trail too.
    const all = await auditOf(p.token, "?limit=1000");
    const created = all.body.events.filter((e) => e.action === "org.create");
    expect(created.map((e) => e.target)).toEqual(expect.arrayContaining(["acme", "zeta"]));
    for (const slug of ["acme", "zeta"]) {
      const calls = all.body.events.filter((e) => e.org === slug).map((e) => e.action);
      expect(calls).toEqual(["machine.create", "app.create", "org.create"]);
    }
  });

  it("records nothing for refused calls", async () => {
    const readonly = await p.api.call<{ token: string }>(
      "POST",
      "/tokens",
      { kind: "readonly", org: "acme" },
      { token: orgs.acme.token },
    );
    expect(readonly.status).toBe(201);
    const before = await auditLastSeq();
    const refused = [
      // Another org's machine: not found.
      await p.api.call(
        "POST",
        `/apps/${orgs.zeta.app}/machines/${orgs.zeta.machineId}/stop`,
        {},
        { token: orgs.acme.token },
      ),
      // A read-only token's write: forbidden.
      await p.api.call("DELETE", `/apps/${orgs.acme.app}`, undefined, { token: readonly.body.token }),
      // A forged token: unauthenticated.
      await p.api.call("DELETE", `/apps/${orgs.acme.app}`, undefined, { token: `${orgs.acme.token}x` }),
    ];
    expect(refused.map((r) => r.status)).toEqual([404, 403, 401]);
    expect(await auditLastSeq()).toBe(before);
    // The read-only token's creation was audited (before), its refused write was not.
    const trail = await auditOf(orgs.acme.token);
    expect(trail.body.events[0]?.action).toBe("token.create");
    expect(trail.body.events.some((e) => e.action === "app.delete")).toBe(false);
  });

  it("records a registry push under the repository's app, and not a refused one", async () => {
    // An image of one config blob and no layers, pushed as docker does: the blob, then the manifest.
    const config = Buffer.from(
      JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
    );
    const digest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest, size: config.length },
      layers: [],
    });
    const push = async (token: string) => {
      const basic = `Basic ${Buffer.from(`x:${token}`).toString("base64")}`;
      const repo = `${p.apiUrl}/v2/${orgs.acme.app}`;
      await fetch(`${repo}/blobs/uploads/?digest=${digest}`, {
        method: "POST",
        headers: { authorization: basic },
        body: config,
      });
      const res = await fetch(`${repo}/manifests/v1`, {
        method: "PUT",
        headers: { authorization: basic, "content-type": "application/vnd.oci.image.manifest.v1+json" },
        body: manifest,
      });
      await res.arrayBuffer();
      return res.status;
    };
    const before = await auditLastSeq();
    expect(await push(orgs.zeta.token)).toBeGreaterThanOrEqual(400);
    expect(await auditLastSeq()).toBe(before);
    expect(await push(orgs.acme.token)).toBe(201);
    const trail = await auditOf(orgs.acme.token, `?app=${orgs.acme.app}`);
    expect(trail.body.events[0]).toMatchObject({
      action: "registry.push",
      target: `${orgs.acme.app}:v1`,
      app: orgs.acme.app,
      org: "acme",
      token_id: orgs.acme.tokenId,
    });
  });
});
