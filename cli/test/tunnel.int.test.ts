import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCliIn } from "./run-cli.js";

// `hangar proxy` and `hangar ssh console` refusing before any tunnel: bad arguments (usage, exit 2)
// and a gateway that cannot be reached (exit 1, saying so). Tunnels themselves are tested on the
// whole platform (tests/network/reaching-in.e2e.test.ts).

let home: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "hangar-cli-tunnel-"));
  // Nothing listens there.
  const local = { api_url: `http://127.0.0.1:${await freePort()}`, token: "t" };
  await writeFile(join(home, "local.json"), JSON.stringify(local));
});

afterAll(async () => {
  if (home) await rm(home, { recursive: true, force: true });
});

describe("hangar proxy and ssh console", () => {
  it("refuse ports that are not <local>[:<remote>]", async () => {
    const res = await runCliIn(home, ["proxy", "15432:db", "-a", "web"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/expected <local>\[:<remote>\]/);
  });

  it("say when the gateway cannot be reached", async () => {
    for (const args of [
      ["proxy", "0:5432", "-a", "web"],
      ["ssh", "console", "-a", "web", "-C", "true"],
    ]) {
      const res = await runCliIn(home, args);
      expect(res.code, args.join(" ")).toBe(1);
      expect(res.stderr).toMatch(
        /cannot reach the Hangar API at http:\/\/127\.0\.0\.1:\d+: is `npm start` running\?/,
      );
    }
  });
});
