// `hangar launch` + `hangar deploy` against the whole platform (every service a real process, the
// builder running RUN steps in the crun sandbox over overlayfs, the host agent running the built OCI image):
// examples/hello and examples/multistage answer through the proxy; a code-only change reuses the
// dependency layers; a broken Dockerfile, a failing RUN, a fly.toml with a wrong type and a release
// whose check fails each end with a clear message while the previous release keeps serving.
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BlobStore, type Digest, exportImageLayout, ImageRegistry } from "@hangar/oci";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { repoRoot } from "../../scripts/platform.js";
import { startTestPlatform, type TestPlatform, viaProxy } from "./harness.js";

const DEPLOY_TIMEOUT_MS = 240_000;
let p: TestPlatform;
let work: string;

beforeAll(async () => {
  p = await startTestPlatform();
  work = mkdtempSync(join(tmpdir(), "hangar-deploy-"));
  // The CLI finds the platform the way it does after `npm start`: through $HANGAR_HOME/local.json.
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
}, 120_000);

afterAll(async () => {
  await p?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Copies an example into the work folder, so launch writes its files there and not into the repo. */
function example(name: string, as: string): string {
  const dir = join(work, as);
  cpSync(join(repoRoot, "examples", name), dir, { recursive: true });
  return dir;
}

function hangar(args: string[], cwd: string, timeoutMs = DEPLOY_TIMEOUT_MS) {
  return runHangar(args, { cwd, env: { HANGAR_HOME: p.home }, timeoutMs });
}

async function body(app: string): Promise<Record<string, unknown>> {
  const res = await viaProxy(p, app);
  expect(res.status, res.body).toBe(200);
  return JSON.parse(res.body) as Record<string, unknown>;
}

interface BuildView {
  status: string;
  steps: Array<{ instruction: string; cached: boolean }>;
}

async function lastBuild(app: string): Promise<BuildView> {
  const builds = await p.api.ok<BuildView[]>("GET", `/apps/${app}/builds`);
  const newest = builds[0];
  if (!newest) throw new Error(`no builds of ${app}`);
  return newest;
}

async function releases(app: string): Promise<Array<{ version: number; status: string; reason: string }>> {
  return p.api.ok("GET", `/apps/${app}/releases`);
}

describe("launch and deploy", () => {
  it(
    "launches and deploys examples/hello: the built image answers through the proxy",
    async () => {
      const dir = example("hello", "hello");
      const launch = await hangar(["launch", "--name", "hello-deploy", "--yes", "--no-deploy"], dir, 60_000);
      expect(launch.code, launch.stderr + launch.stdout).toBe(0);
      expect(readFileSync(join(dir, "Dockerfile"), "utf8")).toMatch(/^FROM node:\d+/m);
      expect(readFileSync(join(dir, "hangar.toml"), "utf8")).toMatch(/app = "hello-deploy"/);

      const deploy = await hangar(["deploy"], dir);
      expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
      expect(deploy.stdout + deploy.stderr).toContain("hello-deploy.localhost");
      const answer = await body("hello-deploy");
      expect(answer.hello).toBe("world");
      const [release] = await releases("hello-deploy");
      expect(release).toMatchObject({ version: 1, status: "succeeded" });
    },
    DEPLOY_TIMEOUT_MS,
  );

  describe("a multi-stage app", () => {
    let dir: string;
    const app = "multistage-deploy";

    it(
      "builds in a build stage with dev dependencies and serves from the slim runtime stage",
      async () => {
        dir = example("multistage", "multistage");
        const launch = await hangar(["launch", "--name", app, "--yes", "--no-deploy"], dir, 60_000);
        expect(launch.code, launch.stderr + launch.stdout).toBe(0);
        const deploy = await hangar(["deploy"], dir);
        expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
        const answer = await body(app);
        expect(answer.message).toBe("multistage v1");
        expect(answer.built).toEqual(expect.any(String));
        expect(answer.dev_tool_in_image).toBe(false);
      },
      DEPLOY_TIMEOUT_MS,
    );

    it(
      "built a real OCI image: skopeo and umoci, tools no one here wrote, read it",
      async () => {
        const [release] = await releases(app);
        const image = (release as unknown as { image: string }).image;
        const digest = image.slice(image.indexOf("@") + 1) as Digest;
        const nc = await p.connectNats();
        const layout = join(work, "layout");
        try {
          const registry = await ImageRegistry.open(nc, await BlobStore.open(nc));
          await exportImageLayout(registry, digest, layout, "v1");
        } finally {
          await nc.close();
        }
        const run = promisify(execFile);
        const inspect = JSON.parse((await run("skopeo", ["inspect", `oci:${layout}:v1`])).stdout);
        expect(inspect.Digest).toBe(digest);
        expect(inspect.Layers.length).toBeGreaterThan(0);
        const config = JSON.parse((await run("skopeo", ["inspect", "--config", `oci:${layout}:v1`])).stdout);
        expect(config.config.Cmd).toEqual(["node", "dist/server.js"]);
        expect(config.config.WorkingDir).toBe("/app");
        await run("umoci", ["stat", "--image", `${layout}:v1`]);
      },
      DEPLOY_TIMEOUT_MS,
    );

    it(
      "redeploys a code-only change reusing the dependency layers, and serves the new code",
      async () => {
        const server = join(dir, "src", "server.js");
        writeFileSync(server, readFileSync(server, "utf8").replace("multistage v1", "multistage v2"));
        const deploy = await hangar(["deploy", "--json"], dir);
        expect(deploy.code, deploy.stderr + deploy.stdout).toBe(0);
        // The log says which steps came from the cache, and the build's own record agrees.
        expect(deploy.stderr + deploy.stdout).toMatch(/CACHED/);
        const build = await lastBuild(app);
        const install = build.steps.find((s) => s.instruction.includes("npm install"));
        const copySrc = build.steps.find((s) => s.instruction.startsWith("COPY src"));
        expect(install?.cached).toBe(true);
        expect(copySrc?.cached).toBe(false);
        // With --json, stdout is the one JSON object; the build log went to stderr.
        const summary = JSON.parse(deploy.stdout);
        expect(summary.release).toBe(2);
        expect((await body(app)).message).toBe("multistage v2");
      },
      DEPLOY_TIMEOUT_MS,
    );

    it(
      "ends a deploy of a broken Dockerfile with its line, and keeps serving",
      async () => {
        const dockerfile = join(dir, "Dockerfile");
        const good = readFileSync(dockerfile, "utf8");
        // A build never gets the host's network: the builder refuses the line before it runs anything.
        writeFileSync(dockerfile, `${good}RUN --network=host echo never\n`);
        const deploy = await hangar(["deploy"], dir);
        writeFileSync(dockerfile, good);
        expect(deploy.code).not.toBe(0);
        const lines = good.split("\n").length;
        expect(deploy.stderr).toMatch(new RegExp(`line ${lines}\\b`));
        expect(deploy.stderr).toMatch(/--network=host is refused/);
        expect(deploy.stderr).toMatch(/deploy again; nothing was released/);
        expect((await body(app)).message).toBe("multistage v2");
      },
      DEPLOY_TIMEOUT_MS,
    );

    it(
      "ends a deploy whose RUN fails with the command's output, and keeps serving",
      async () => {
        const dockerfile = join(dir, "Dockerfile");
        const good = readFileSync(dockerfile, "utf8");
        writeFileSync(
          dockerfile,
          good.replace("RUN npm run build", "RUN echo 'compiler says no' >&2 && exit 3"),
        );
        const deploy = await hangar(["deploy"], dir);
        writeFileSync(dockerfile, good);
        expect(deploy.code).not.toBe(0);
        // The build log (stdout) shows what the command printed; the error (stderr) says where and why.
        expect(deploy.stdout).toContain("compiler says no");
        expect(deploy.stderr).toMatch(/exit code 3/);
        const line = good.split("\n").findIndex((l) => l.startsWith("RUN npm run build")) + 1;
        expect(deploy.stderr).toMatch(new RegExp(`line ${line}\\b`));
        expect((await body(app)).message).toBe("multistage v2");
      },
      DEPLOY_TIMEOUT_MS,
    );

    it(
      "refuses a hangar.toml with a wrong type, naming the key and line, and keeps serving",
      async () => {
        const config = join(dir, "hangar.toml");
        const good = readFileSync(config, "utf8");
        const bad = good.replace(/internal_port = \d+/, 'internal_port = "eighty"');
        expect(bad).not.toBe(good);
        writeFileSync(config, bad);
        const deploy = await hangar(["deploy"], dir, 60_000);
        writeFileSync(config, good);
        expect(deploy.code).not.toBe(0);
        const line = bad.split("\n").findIndex((l) => l.includes('internal_port = "eighty"')) + 1;
        expect(deploy.stderr).toContain(`hangar.toml:${line}`);
        expect(deploy.stderr).toContain("internal_port");
        expect((await body(app)).message).toBe("multistage v2");
      },
      DEPLOY_TIMEOUT_MS,
    );

    it(
      "rolls back a release whose check fails: the previous release keeps serving",
      async () => {
        const server = join(dir, "src", "server.js");
        const good = readFileSync(server, "utf8");
        writeFileSync(
          server,
          good
            .replace("multistage v2", "multistage v3")
            .replace(
              'res.writeHead(200, { "content-type": "text/plain" }).end("ok\\n");',
              "res.writeHead(500).end();",
            ),
        );
        const config = join(dir, "hangar.toml");
        const goodConfig = readFileSync(config, "utf8");
        // Point the generated http check at /healthz, which v3 fails.
        writeFileSync(config, goodConfig.replace(/path = "\/"/, 'path = "/healthz"'));
        const deploy = await hangar(["deploy", "--wait-timeout", "15s"], dir);
        writeFileSync(server, good);
        writeFileSync(config, goodConfig);
        expect(deploy.code).not.toBe(0);
        expect(deploy.stderr).toMatch(/release v3 failed/);
        expect(deploy.stderr).toMatch(/v2 keeps serving/);
        for (let i = 0; i < 10; i++) expect((await body(app)).message).toBe("multistage v2");
        const [newest] = await releases(app);
        expect(newest).toMatchObject({ version: 3, status: "failed" });
        const machines = await p.api.ok<Array<{ state: string; config: { image: string } }>>(
          "GET",
          `/apps/${app}/machines`,
        );
        const left = machines.filter((m) => m.state !== "destroyed" && m.state !== "destroying");
        expect(left, JSON.stringify(machines.map((m) => m.state))).toHaveLength(1);
      },
      DEPLOY_TIMEOUT_MS,
    );
  });
});
