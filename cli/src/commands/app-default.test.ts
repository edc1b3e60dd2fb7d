// App-scoped commands take the app from hangar.toml/fly.toml in the folder when -a is absent, as
// flyctl's do; -a wins; with neither, the run stops with a message saying how to name one.
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createContext } from "../context.js";
import { runCli } from "../program.js";

let server: Server;
let apiUrl: string;
/** The paths the API was asked for, in order. */
const asked: string[] = [];
const folders: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    asked.push(`${req.method} ${req.url}`);
    res.setHeader("content-type", "application/json");
    const path = new URL(req.url ?? "/", "http://api").pathname;
    if (path.endsWith("/scaling"))
      return res.end(
        JSON.stringify({ app: "x", panic: false, panic_since: null, decisions_total: 0, decisions: [] }),
      );
    if (/^\/v1\/apps\/[^/]+$/.test(path)) return res.end(JSON.stringify({ name: "x", status: "deployed" }));
    res.end("[]");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server?.close();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in a folder holding `files`, against the recording API. */
async function run(args: string[], files: Record<string, string> = {}) {
  const cwd = mkdtempSync(join(tmpdir(), "hangar-app-default-"));
  folders.push(cwd);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  const res = { code: 0, stdout: "", stderr: "" };
  const ctx = createContext({
    env: { HANGAR_HOME: cwd, HANGAR_API_URL: apiUrl, HANGAR_API_TOKEN: "t" },
    cwd,
    out: (t) => {
      res.stdout += t;
    },
    err: (t) => {
      res.stderr += t;
    },
  });
  asked.length = 0;
  res.code = await runCli(args, ctx);
  return res;
}

describe("the app of an app-scoped command", () => {
  it("comes from fly.toml when -a is absent", async () => {
    const res = await run(["machine", "list"], { "fly.toml": 'app = "from-config"\n' });
    expect(res, res.stderr).toMatchObject({ code: 0 });
    expect(asked).toEqual(["GET /v1/apps/from-config/machines"]);
    const status = await run(["status"], { "hangar.toml": 'app = "mine"\n' });
    expect(status, status.stderr).toMatchObject({ code: 0 });
    expect(asked).toContain("GET /v1/apps/mine/machines");
  });

  it("comes from the config file for scale show too", async () => {
    const res = await run(["scale", "show", "--json"], { "fly.toml": 'app = "scaled"\n' });
    expect(res, res.stderr).toMatchObject({ code: 0 });
    expect(asked).toEqual(["GET /v1/apps/scaled/machines"]);
    expect(JSON.parse(res.stdout)).toEqual([]);
  });

  it("is -a's when given, whatever the config file says", async () => {
    const res = await run(["machine", "list", "-a", "named"], { "fly.toml": 'app = "from-config"\n' });
    expect(res.code).toBe(0);
    expect(asked).toEqual(["GET /v1/apps/named/machines"]);
  });

  it("is asked for when there is neither, and nothing is called", async () => {
    const res = await run(["machine", "status", "m1"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/no app given and no hangar.toml or fly.toml found/);
    expect(res.stderr).toMatch(/pass -a <app>/);
    expect(asked).toEqual([]);
  });
});
