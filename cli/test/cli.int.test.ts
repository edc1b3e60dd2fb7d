import { once } from "node:events";
import { mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeApi, fakeMachine } from "./fake-api.js";
import { runHangar } from "./run-cli.js";

// The real CLI as a child process against a stand-in for the HTTP API. Each run costs a tsx start-up,
// so this file keeps to what only a process shows (environment, exit codes, stdout vs stderr); the
// commands' details are in commands.int.test.ts, in process.

const TOKEN = "test-token";
let api: FakeApi;
let tmp: string;
/** HANGAR_HOME whose local.json points at the fake API. */
let home: string;
/** A HANGAR_HOME without local.json. */
let emptyHome: string;

/** A port nothing listens on: bound by us, then released. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  api = await FakeApi.start(TOKEN);
  tmp = await realpath(await mkdtemp(join(tmpdir(), "hangar-cli-int-")));
  home = join(tmp, "home");
  emptyHome = join(tmp, "empty-home");
  await mkdir(home);
  await mkdir(emptyHome);
  const local = {
    api_url: api.url,
    token: TOKEN,
    proxy_url: "http://127.0.0.1:18080",
  };
  await writeFile(join(home, "local.json"), JSON.stringify(local));
});

afterAll(async () => {
  await api?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("configuration", () => {
  it("reads local.json when no environment variable is set, and --json prints only the API's JSON", async () => {
    const apps = { total_apps: 2, apps: [{ id: "web", name: "web", machine_count: 2 }, { name: "db" }] };
    api.reply("GET", "/apps", apps);
    const res = await runHangar(["apps", "list", "--json"], { env: { HANGAR_HOME: home } });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(apps);
    const req = api.seen("GET", "/apps").at(-1);
    // Without -o the gateway answers for the token's own org.
    expect(req?.query).toEqual({});
    expect(req?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it("lets HANGAR_API_URL and HANGAR_API_TOKEN win over local.json, and prints tables", async () => {
    const stale = join(tmp, "stale-home");
    await mkdir(stale);
    await writeFile(
      join(stale, "local.json"),
      JSON.stringify({ api_url: `http://127.0.0.1:${await closedPort()}`, token: "stale" }),
    );
    api.reply("GET", "/apps", {
      total_apps: 2,
      apps: [
        { name: "web", machine_count: 12 },
        { name: "a-longer-name", machine_count: 0 },
      ],
    });
    const res = await runHangar(["apps", "list", "--org", "acme"], {
      env: { HANGAR_HOME: stale, HANGAR_API_URL: api.url, HANGAR_API_TOKEN: TOKEN },
    });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      ["NAME           MACHINES", "web            12", "a-longer-name  0", ""].join("\n"),
    );
    expect(api.seen("GET", "/apps").at(-1)?.query).toEqual({ org_slug: "acme" });
  });

  it("without a platform, says how to start one and exits 1", async () => {
    const res = await runHangar(["apps", "list"], { env: { HANGAR_HOME: emptyHome } });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toBe(
      "Error: no Hangar platform found: run `npm start` in the hangar repository, or set HANGAR_API_URL and HANGAR_API_TOKEN\n",
    );
  });
});

describe("errors and exit codes", () => {
  it("explains a refused token", async () => {
    const res = await runHangar(["apps", "list"], {
      env: { HANGAR_HOME: emptyHome, HANGAR_API_URL: api.url, HANGAR_API_TOKEN: "wrong" },
    });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toBe(
      "Error: unauthorized\nthe API token was refused: check HANGAR_API_TOKEN, or the token in $HANGAR_HOME/local.json matches the running platform (restart `npm start` rewrites it)\n",
    );
  });

  it("says when the API cannot be reached", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const res = await runHangar(["machine", "list", "-a", "web"], {
      env: { HANGAR_HOME: emptyHome, HANGAR_API_URL: url, HANGAR_API_TOKEN: TOKEN },
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `Error: cannot reach the Hangar API at ${url}: is \`npm start\` running? (ECONNREFUSED)\n`,
    );
  });

  it("will not destroy an app without --yes when stdin is not a terminal", async () => {
    api.reply("DELETE", "/apps/keep", undefined, 202);
    const res = await runHangar(["apps", "destroy", "keep"], { env: { HANGAR_HOME: home } });
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      "Error: refusing to destroy app keep without confirmation\npass --yes to confirm\n",
    );
    expect(api.seen("DELETE", "/apps/keep")).toEqual([]);
  });
});

describe("machine run", () => {
  it("creates from a folder, waits for started through a timed-out poll, and prints the URL", async () => {
    const project = join(tmp, "project");
    await mkdir(project);
    api.reply("POST", "/apps/web/machines", fakeMachine("m1", { state: "created", instance_id: "inst-1" }));
    // The first poll ends the way a server-side wait timeout does; the CLI must poll again.
    api.route("GET", "/apps/web/machines/m1/wait", (_req, calls) =>
      calls === 0
        ? { status: 408, body: { error: "deadline_exceeded" } }
        : { status: 200, body: { ok: true } },
    );
    const args = ["machine", "run", ".", "-a", "web", "-p", "8080", "-e", "A=1", "-e", "B=x=y"];
    const res = await runHangar([...args, "--cmd", "node 'my server.js'"], {
      env: { HANGAR_HOME: home },
      cwd: project,
    });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      "Machine m1 created in region local, waiting for it to start... started\nURL: http://web.localhost:18080\n",
    );
    expect(api.seen("POST", "/apps/web/machines")[0]?.body).toEqual({
      config: {
        image: `dir:${project}`,
        env: { A: "1", B: "x=y" },
        init: { cmd: ["node", "my server.js"] },
        services: [
          {
            protocol: "tcp",
            internal_port: 8080,
            ports: [
              { port: 80, handlers: ["http"] },
              { port: 443, handlers: ["tls", "http"] },
            ],
          },
        ],
      },
    });
    const waits = api.seen("GET", "/apps/web/machines/m1/wait");
    expect(waits).toHaveLength(2);
    for (const w of waits) {
      expect(w.query.state).toBe("started");
      expect(w.query.instance_id).toBe("inst-1");
      expect(Number(w.query.timeout)).toBeGreaterThan(0);
      expect(Number(w.query.timeout)).toBeLessThanOrEqual(60);
    }
  });
});
