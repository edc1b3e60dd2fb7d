import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeApi } from "./fake-api.js";
import { runCliIn } from "./run-cli.js";

// `hangar machine exec` in this process against a stand-in for the HTTP API: what it sends, prints
// and exits with. tests/security/exec.e2e.test.ts runs it against the real platform.

const TOKEN = "test-token";
let api: FakeApi;
let home: string;

async function hangar(
  args: string[],
  token = TOKEN,
): Promise<{ code: number; stdout: string; stderr: string }> {
  await writeFile(join(home, "local.json"), JSON.stringify({ api_url: api.url, token }));
  return runCliIn(home, args);
}

beforeAll(async () => {
  api = await FakeApi.start(TOKEN);
  home = await mkdtemp(join(tmpdir(), "hangar-cli-exec-"));
});

afterAll(async () => {
  await api?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

describe("hangar machine exec", () => {
  it("sends the argv after -- and the timeout, prints stdout and stderr, and exits with the command's code", async () => {
    api.reply("POST", "/apps/web/machines/m1/exec", {
      stdout: "out\n",
      stderr: "err\n",
      exit_code: 3,
      exit_signal: 0,
    });
    const res = await hangar([
      "machine",
      "exec",
      "m1",
      "-a",
      "web",
      "--timeout",
      "5",
      "--",
      "sh",
      "-c",
      "exit 3",
    ]);
    expect(res).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    expect(api.seen("POST", "/apps/web/machines/m1/exec").at(-1)?.body).toEqual({
      command: ["sh", "-c", "exit 3"],
      timeout: 5,
    });
  });

  it("takes the app from hangar.toml, prints JSON with --json, and exits 128+n for a death by signal n", async () => {
    await writeFile(join(home, "hangar.toml"), 'app = "web"\n');
    api.reply("POST", "/apps/web/machines/m1/exec", {
      stdout: "",
      stderr: "",
      exit_code: 137,
      exit_signal: 9,
    });
    const res = await hangar(["machine", "exec", "m1", "--json", "--", "sleep", "100"]);
    expect(res.code).toBe(137);
    expect(JSON.parse(res.stdout)).toEqual({ stdout: "", stderr: "", exit_code: 137, exit_signal: 9 });
    expect(api.seen("POST", "/apps/web/machines/m1/exec").at(-1)?.body).toEqual({
      command: ["sleep", "100"],
      timeout: 30,
    });
    await rm(join(home, "hangar.toml"));
  });

  it("says why it was refused and exits 1: a wrong token, a machine of another app, a machine not started", async () => {
    const calls = api.seen("POST", "/apps/web/machines/m1/exec").length;
    const denied = await hangar(["machine", "exec", "m1", "-a", "web", "--", "id"], "stolen");
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^Error: unauthorized\nthe API token was refused/);
    expect(denied.stdout).toBe("");

    api.reply(
      "POST",
      "/apps/web/machines/m3/exec",
      { error: "machine m3 not found in app web", status: "not_found" },
      404,
    );
    const other = await hangar(["machine", "exec", "m3", "-a", "web", "--", "id"]);
    expect(other.code).toBe(1);
    expect(other.stderr).toBe(
      "Error: machine m3 not found in app web\nmachine m3 not found in app web: list them with `hangar machine list -a web`\n",
    );

    const error = "machine m2 is stopped: exec and ps need a started machine";
    api.reply("POST", "/apps/web/machines/m2/exec", { error, status: "failed_precondition" }, 412);
    const stopped = await hangar(["machine", "exec", "m2", "-a", "web", "--", "id"]);
    expect(stopped).toEqual({
      code: 1,
      stdout: "",
      stderr: `Error: ${error}\nstart it with \`hangar machine start m2 -a web\`\n`,
    });
    expect(api.seen("POST", "/apps/web/machines/m1/exec")).toHaveLength(calls + 1);
  });

  it("exits 2 on a usage error without calling the API: no command, a timeout over 60 s", async () => {
    const before = api.requests.length;
    expect((await hangar(["machine", "exec", "m1", "-a", "web"])).code).toBe(2);
    const late = await hangar(["machine", "exec", "m1", "-a", "web", "--timeout", "61", "--", "id"]);
    expect(late.code).toBe(2);
    expect(late.stderr).toContain("at most 60 seconds");
    expect(api.requests.length).toBe(before);
  });
});
