// Issue 14's acceptance 4, on the whole platform: an image pushed to a real registry (Debian's
// docker-registry with Docker Hub's token auth) behind a multi-platform index (amd64 and arm64) is
// deployed with `hangar registry login` + `hangar deploy --image`, and the host agent pulls it through
// Hangar's registry and runs the amd64 variant (it answers through the proxy with its marker). A
// wrong password, a missing tag and a corrupted blob each fail the deploy with a clear error naming
// the ref, exit non-zero, leave no machine running and record no tag in Hangar's registry.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobStore, cacheRepository, ImageRegistry } from "@hangar/oci";
import {
  type FaultyRegistryProxy,
  startFaultyRegistryProxy,
  startTestRegistry,
  type TestRegistry,
  writeTestImageLayout,
} from "@hangar/testkit";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, hangarArgv, runHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform, viaProxy } from "../platform/harness.js";

const DEPLOY_TIMEOUT_MS = 120_000;
const PORT = 8080;
let p: TestPlatform;
let registry: TestRegistry;
let open: TestRegistry;
let faulty: FaultyRegistryProxy;
let work: string;
let nc: NatsConnection;

/** The amd64 image runs Debian's nats-server (with the libc it links) as an HTTP monitor naming its platform. */
function serverImage(marker: string): { files: Record<string, Uint8Array>; cmd: string[] } {
  const files: Record<string, Uint8Array> = {};
  for (const path of [
    "/usr/sbin/nats-server",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
  ]) {
    files[path] = readFileSync(path);
  }
  return { files, cmd: ["/usr/sbin/nats-server", "-p", "4999", "-m", String(PORT), "--server_name", marker] };
}

function hangar(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return runHangar(args, { cwd: work, env: { HANGAR_HOME: p.home }, timeoutMs });
}

/** `hangar registry login` with the password on stdin, as a user pipes it. */
function login(host: string, user: string, password: string): Promise<CliResult> {
  const [file, ...argv] = hangarArgv([
    "registry",
    "login",
    host,
    "-u",
    user,
    "--password-stdin",
    "-o",
    "personal",
  ]);
  const child = spawn(file as string, argv, { cwd: work, env: { ...process.env, HANGAR_HOME: p.home } });
  const result: CliResult = { code: null, stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => {
    result.stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    result.stderr += d.toString();
  });
  child.stdin.end(`${password}\n`);
  return new Promise((resolve) => child.on("close", (code) => resolve({ ...result, code })));
}

async function createApp(app: string): Promise<void> {
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  writeFileSync(
    join(work, `${app}.toml`),
    `app = "${app}"\n\n[http_service]\ninternal_port = ${PORT}\nauto_stop_machines = "off"\nmin_machines_running = 1\n`,
  );
}

function deployImage(app: string, ref: string): Promise<CliResult> {
  return hangar(["deploy", "-c", `${app}.toml`, "--image", ref, "--wait-timeout", "60s"], DEPLOY_TIMEOUT_MS);
}

async function cachedTags(host: string, repository: string): Promise<string[]> {
  const images = await ImageRegistry.open(nc, await BlobStore.open(nc));
  return images.tags(cacheRepository(host, repository));
}

async function startedMachines(app: string): Promise<unknown[]> {
  const machines = await p.api.ok<Array<{ state: string }>>("GET", `/apps/${app}/machines`);
  return machines.filter((m) => m.state === "started");
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "hangar-deploy-image-"));
  const layout = join(work, "layout");
  const amd64 = serverImage("amd64-variant");
  writeTestImageLayout(layout, "1", [
    { architecture: "amd64", files: amd64.files, cmd: amd64.cmd },
    { architecture: "arm64", files: { "/marker": "arm64-variant\n" }, cmd: ["/marker"] },
  ]);
  registry = await startTestRegistry({ auth: "token" });
  await registry.push(`oci:${layout}:1`, "x/app:1", { all: true });
  // An anonymous registry behind a proxy that corrupts blobs.
  open = await startTestRegistry();
  await open.push(`oci:${layout}:1`, "x/app:1", { all: true });
  faulty = await startFaultyRegistryProxy(open.url);
  faulty.corrupt = true;
  const upstreams = JSON.stringify({ [registry.host]: registry.url, [faulty.host]: faulty.url });
  p = await startTestPlatform({
    env: {
      "host-agent": { HANGAR_REGISTRY_UPSTREAMS: upstreams },
      gateway: { HANGAR_REGISTRY_UPSTREAMS: upstreams },
      builder: { HANGAR_REGISTRY_UPSTREAMS: upstreams },
    },
  });
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  nc = await p.connectNats();
}, 180_000);

afterAll(async () => {
  await nc?.close();
  await p?.close();
  await faulty?.stop();
  await registry?.stop();
  await open?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("hangar deploy --image from a registry with auth", () => {
  it(
    "refuses a wrong password, naming the ref, and runs nothing",
    async () => {
      const app = "img-wrongpass";
      await createApp(app);
      const loggedIn = await login(registry.host, registry.username, "not-the-password");
      expect(loggedIn.code, loggedIn.stderr).toBe(0);
      const ref = `${registry.host}/x/app:1`;
      const deploy = await deployImage(app, ref);
      expect(deploy.code, deploy.stdout + deploy.stderr).not.toBe(0);
      expect(deploy.stderr).toContain(`authentication failed for ${ref}`);
      expect(await startedMachines(app)).toEqual([]);
      expect(await cachedTags(registry.host, "x/app")).toEqual([]);
    },
    DEPLOY_TIMEOUT_MS,
  );

  it(
    "names a missing tag",
    async () => {
      const app = "img-missing";
      await createApp(app);
      expect((await login(registry.host, registry.username, registry.password)).code).toBe(0);
      const ref = `${registry.host}/x/app:404`;
      const deploy = await deployImage(app, ref);
      expect(deploy.code).not.toBe(0);
      expect(deploy.stderr).toContain(`${ref} not found: tag 404 does not exist in ${registry.host}/x/app`);
      expect(await startedMachines(app)).toEqual([]);
    },
    DEPLOY_TIMEOUT_MS,
  );

  it(
    "refuses a corrupted blob and records nothing",
    async () => {
      const app = "img-corrupt";
      await createApp(app);
      const ref = `${faulty.host}/x/app:1`;
      const deploy = await deployImage(app, ref);
      expect(deploy.code).not.toBe(0);
      expect(deploy.stderr).toMatch(
        new RegExp(`blob sha256:[0-9a-f]{64} of ${ref.replace(/[.:/]/g, "\\$&")} is corrupted`),
      );
      expect(await startedMachines(app)).toEqual([]);
      expect(await cachedTags(faulty.host, "x/app")).toEqual([]);
    },
    DEPLOY_TIMEOUT_MS,
  );

  it(
    "pulls through Hangar's registry and runs the amd64 variant",
    async () => {
      const app = "img-ok";
      await createApp(app);
      const ref = `${registry.host}/x/app:1`;
      const deploy = await deployImage(app, ref);
      expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
      expect(deploy.stdout).toContain(`Deploying the image ${ref} (no build)`);
      const res = await viaProxy(p, app, "/varz");
      expect(res.status, res.body).toBe(200);
      expect(JSON.parse(res.body).server_name).toBe("amd64-variant");
      // The host's pull ends once the layers are unpacked; its cache fill is recorded after.
      await expect.poll(() => cachedTags(registry.host, "x/app"), { timeout: 30_000 }).toEqual(["1"]);
    },
    DEPLOY_TIMEOUT_MS,
  );
});
