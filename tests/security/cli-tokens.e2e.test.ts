// Issue 13, the CLI's side of orgs and tokens, run as a real process against a whole platform:
// `hangar orgs create` hands out the org's admin token; `hangar tokens create deploy -a` makes what CI
// uses, which works from FLY_API_TOKEN (also in flyctl's `FlyV1 <token>` form) for its app and
// nothing more; `hangar tokens revoke` ends it; `hangar audit` shows who did what.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";

const ORG = "ci-org";
const APP = "ci-web";

let p: TestPlatform;
let home: string;
let admin: string;

/** The CLI with only the given token variables (and an empty HANGAR_HOME, so no local.json token). */
function hangar(
  args: string[],
  tokens: { HANGAR_API_TOKEN?: string; FLY_API_TOKEN?: string },
): Promise<CliResult> {
  return runHangar(args, {
    env: { HANGAR_HOME: home, HANGAR_API_URL: p.apiUrl, FLY_API_TOKEN: "", ...tokens },
  });
}

function json<T>(res: CliResult): T {
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as T;
}

beforeAll(async () => {
  p = await startTestPlatform();
  home = await mkdtemp(join(tmpdir(), "hangar-cli-tokens-"));
}, 120_000);

afterAll(async () => {
  await p?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

describe("hangar orgs, tokens, auth and audit", () => {
  it("creates an org and prints its admin token once, with a warning to store it", async () => {
    const res = await hangar(["orgs", "create", ORG, "--name", "CI"], { HANGAR_API_TOKEN: p.token });
    expect(res.code).toBe(0);
    admin = res.stdout.trim();
    expect(admin).toMatch(/^\S+$/);
    expect(res.stderr).toMatch(/Organization ci-org created/);
    expect(res.stderr).toMatch(/Store it now/);
    expect((await hangar(["apps", "create", APP, "-o", ORG], { FLY_API_TOKEN: `FlyV1 ${admin}` })).code).toBe(
      0,
    );
    const orgs = json<{ slug: string }[]>(
      await hangar(["orgs", "list", "--json"], { HANGAR_API_TOKEN: admin }),
    );
    expect(orgs.map((o) => o.slug)).toEqual([ORG]);
    const show = await hangar(["orgs", "show", ORG], { HANGAR_API_TOKEN: admin });
    expect(show.stdout).toMatch(/Apps: +1/);
  });

  it("makes a deploy token that works from FLY_API_TOKEN for its app only, until it is revoked", async () => {
    const created = await hangar(
      ["tokens", "create", "deploy", "-a", APP, "--name", "ci", "--expiry", "720h"],
      {
        HANGAR_API_TOKEN: admin,
      },
    );
    expect(created.code).toBe(0);
    const deploy = created.stdout.trim();
    const id = /^Token (\S+):/.exec(created.stderr)?.[1] ?? "";
    expect(created.stderr).toMatch(/deploy for ci-org: ci-web, expires /);

    const fly = { FLY_API_TOKEN: `FlyV1 ${deploy}` };
    const who = json<{ token_id: string; kind: string; apps: string[] }>(
      await hangar(["auth", "whoami", "--json"], fly),
    );
    expect(who).toMatchObject({ token_id: id, kind: "deploy", apps: [APP] });
    expect((await hangar(["auth", "token"], fly)).stdout).toBe(`${deploy}\n`);
    // HANGAR_API_TOKEN wins over FLY_API_TOKEN.
    expect((await hangar(["auth", "token"], { ...fly, HANGAR_API_TOKEN: admin })).stdout).toBe(`${admin}\n`);

    expect((await hangar(["machine", "list", "-a", APP], fly)).code).toBe(0);
    const outside = await hangar(["apps", "create", "ci-other", "-o", ORG], fly);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^Error: /);

    const listed = json<{ id: string; name: string; revoked_at: string | null }[]>(
      await hangar(["tokens", "list", "-o", ORG, "--json"], { HANGAR_API_TOKEN: admin }),
    );
    expect(listed.find((t) => t.id === id)).toMatchObject({ name: "ci", revoked_at: null });

    const revoked = await hangar(["tokens", "revoke", id], { HANGAR_API_TOKEN: admin });
    expect(revoked).toMatchObject({ code: 0, stdout: `Token ${id} revoked\n` });
    const after = await hangar(["machine", "list", "-a", APP], fly);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/^Error: /);

    const audit = json<{ events: { action: string; target: string }[] }>(
      await hangar(["audit", "--json"], { HANGAR_API_TOKEN: admin }),
    );
    const actions = audit.events.map((e) => `${e.action} ${e.target}`);
    expect(actions.slice(0, 3)).toEqual([`token.revoke ${id}`, `token.create ${id}`, `app.create ${APP}`]);
    const table = await hangar(["audit", "-a", APP], { HANGAR_API_TOKEN: admin });
    expect(table.stdout).toMatch(
      /^TIME +ACTION +TARGET +APP +ORG +TOKEN +STATUS\n.+app\.create +ci-web +ci-web +ci-org /,
    );
  });
});
