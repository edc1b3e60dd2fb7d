import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  BlobStore,
  createLayer,
  type Digest,
  exportImageLayout,
  hostArchitecture,
  ImageRegistry,
  writeImage,
} from "@hangar/oci";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createApi } from "../src/http/api.js";
import type { MachinesBackend } from "../src/http/backend.js";
import { type ApiServer, startApiServer } from "../src/http/server.js";
import { testAuth } from "./auth-fixture.js";

// The registry over a real socket and a real nats-server, checked by a client no one here wrote:
// skopeo pushes an image layout to the gateway and pulls it back, and every byte must survive.
const exec = promisify(execFile);
const { auth: AUTH, token: TOKEN } = testAuth();
let nc: NatsConnection;
let server: ApiServer;
let work: string;
let digest: Digest;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  const blobs = await BlobStore.open(nc, { bucket: `gateway-test-blobs-${process.pid}` });
  const registry = await ImageRegistry.open(nc, blobs, { bucket: `gateway-test-registry-${process.pid}` });
  work = await mkdtemp(join(tmpdir(), "gateway-registry-"));

  await mkdir(join(work, "rootfs/app"), { recursive: true });
  await writeFile(
    join(work, "rootfs/app/server.js"),
    "require('http').createServer((q, s) => s.end('hi')).listen(8080);\n",
  );
  const layer = await createLayer(join(work, "rootfs"), join(work, "layer.tar.gz"));
  await blobs.putFile(layer.file, layer.digest);
  digest = await writeImage(registry, {
    repository: "build/app",
    tag: "v1",
    layers: [layer],
    config: {
      architecture: hostArchitecture(),
      os: "linux",
      config: { Cmd: ["node", "/app/server.js"], ExposedPorts: { "8080/tcp": {} } },
      rootfs: { type: "layers", diff_ids: [layer.diffId] },
    },
  });
  await exportImageLayout(registry, digest, join(work, "src"), "v1");

  server = await startApiServer(
    createApi({
      backend: {} as MachinesBackend, // the /v1 routes are not under test here
      auth: AUTH,
      logger: createLogger("registry-int", { level: "silent" }),
      registry,
      registryUploadDir: join(work, "uploads"),
    }),
    { port: 0 },
  );
});

afterAll(async () => {
  await server?.close();
  await nc?.drain();
  await rm(work, { recursive: true, force: true });
});

async function blobsOf(layout: string): Promise<Map<string, Buffer>> {
  const dir = join(layout, "blobs/sha256");
  const files = await readdir(dir);
  return new Map(await Promise.all(files.map(async (f) => [f, await readFile(join(dir, f))] as const)));
}

it("takes a skopeo push and gives back the same bytes on a skopeo pull", async () => {
  const remote = `docker://127.0.0.1:${server.port}/demo/app:v1`;
  await exec("skopeo", [
    "copy",
    "--dest-tls-verify=false",
    "--dest-creds",
    `x:${TOKEN}`,
    `oci:${join(work, "src")}:v1`,
    remote,
  ]);

  const { stdout } = await exec("skopeo", [
    "inspect",
    "--tls-verify=false",
    "--creds",
    `x:${TOKEN}`,
    "--raw",
    remote,
  ]);
  const pushed = await readFile(join(work, "src/blobs/sha256", digest.slice("sha256:".length)), "utf8");
  expect(stdout).toBe(pushed);

  await exec("skopeo", [
    "copy",
    "--src-tls-verify=false",
    "--src-creds",
    `x:${TOKEN}`,
    remote,
    `oci:${join(work, "dst")}:v1`,
  ]);
  const index = JSON.parse(await readFile(join(work, "dst/index.json"), "utf8")) as {
    manifests: Array<{ digest: string }>;
  };
  expect(index.manifests.map((m) => m.digest)).toEqual([digest]);
  const [src, dst] = [await blobsOf(join(work, "src")), await blobsOf(join(work, "dst"))];
  expect([...dst.keys()].sort()).toEqual([...src.keys()].sort());
  for (const [name, bytes] of src) expect(dst.get(name)?.equals(bytes), name).toBe(true);
});

it("refuses skopeo without the token", async () => {
  const pull = exec("skopeo", [
    "inspect",
    "--tls-verify=false",
    "--creds",
    "x:wrong",
    `docker://127.0.0.1:${server.port}/demo/app:v1`,
  ]);
  await expect(pull).rejects.toThrow(/unauthorized|authentication required|401/i);
});
