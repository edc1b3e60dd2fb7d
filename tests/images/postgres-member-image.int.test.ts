// The member image hangar/postgres-member:15, made and pulled the way a host agent pulls a machine's
// image (ImagePuller with the platform's bases: the registry's pull-through makes it on first use),
// then its entrypoint run as root in a chroot of its root filesystem on the host network: the agent
// starts, its control API bootstraps postgres (as the image's postgres user) and the router reaches it.
// Its first layer is postgres:15's (a second mmdebstrap run when the host has not made it, over CI's
// budget): it runs when that layer is in the host cache or HANGAR_POSTGRES_BASE_TEST=1.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BlobStore,
  ImageRegistry,
  LayerStore,
  mountImageRoot,
  platformBaseImages,
  unmountIfMounted,
} from "@hangar/oci";
import { freePort, sharedLayersDir } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { ImagePuller } from "../../services/host-agent/src/images.js";

const cacheDir =
  process.env.HANGAR_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "hangar");
const postgresLayerCached = (() => {
  const dir = join(cacheDir, "bases");
  return existsSync(dir) && readdirSync(dir).some((name) => /^postgres-15-.+\.json$/.test(name));
})();
const enabled = process.env.HANGAR_POSTGRES_BASE_TEST === "1" || postgresLayerCached;
const TOKEN = "member-image-test-token";
let nc: NatsConnection;
let work: string;
let merged: string;
let agent: ChildProcess | undefined;
const output = "";

beforeAll(async () => {
  if (!enabled) return;
  nc = await connect({ servers: inject("natsUrl") });
  work = await mkdtemp(join(tmpdir(), "hangar-member-image-"));
  merged = join(work, "merged");
}, 60_000);
afterAll(async () => {
  if (agent?.exitCode === null) {
    const exited = new Promise((resolve) => agent?.once("exit", resolve));
    // unshare ignores signals while it waits: its child (pid 1 inside) is killed, and the namespace with it.
    await signalChildren(agent.pid, "SIGKILL");
    await exited;
  }
  if (merged) await unmountIfMounted(merged);
  await nc?.drain();
  if (work) await rm(work, { recursive: true, force: true });
});

it.runIf(enabled)(
  "makes hangar/postgres-member:15 on a host agent's pull; its agent bootstraps postgres and routes to it",
  async () => {
    const blobs = await BlobStore.open(nc, { bucket: `test-member-image-blobs-${process.pid}` });
    const registry = await ImageRegistry.open(nc, blobs, { bucket: `test-member-image-${process.pid}` });
    const layers = new LayerStore(sharedLayersDir().layersDir ?? join(work, "layers"), blobs);
    const lines: string[] = [];
    const puller = new ImagePuller({
      registry,
      layers,
      logger: { info: (_fields: unknown, line?: string) => lines.push(line ?? ""), warn: () => undefined },
      bases: platformBaseImages(registry),
    });
    const pulled = await puller.pull("hangar/postgres-member:15");
    expect(pulled.repository).toBe("hangar/postgres-member");
    expect(pulled.config.config).toMatchObject({
      Entrypoint: ["/usr/local/bin/node", "/usr/local/lib/hangar/pg-member.mjs"],
      StopSignal: "SIGTERM",
      ExposedPorts: { "5432/tcp": {}, "5433/tcp": {}, "5500/tcp": {} },
      Env: expect.arrayContaining([expect.stringMatching(/^PATH=.*\/usr\/lib\/postgresql\/15\/bin/)]),
    });
    // Its first layer is postgres:15's, the same blob.
    const postgres = await platformBaseImages(registry).make("postgres:15");
    const image = await registry.resolve("hangar/postgres-member:15");
    expect(image.manifest.layers).toHaveLength(3);
    expect(image.manifest.layers[0]?.digest).toBe(postgres?.manifest.layers[0]?.digest);
    // Pulled again: from Hangar's registry, the same image.
    expect((await puller.pull("hangar/postgres-member:15")).digest).toBe(pulled.digest);
    // A tag that names another image (what an older Hangar pushed, with its older agent) is made
    // again from this checkout by the next process's resolve: members always run this agent.
    const other = await registry.getManifest("library/postgres", "15");
    if (!other) throw new Error("postgres:15 is not in the registry");
    await registry.putManifest("hangar/postgres-member", "15", other.bytes, other.mediaType);
    expect((await registry.resolve("hangar/postgres-member:15")).digest).not.toBe(pulled.digest);
    const nextProcess = new ImagePuller({
      registry,
      layers,
      logger: { info: () => undefined, warn: () => undefined },
      bases: platformBaseImages(registry),
    });
    expect((await nextProcess.pull("hangar/postgres-member:15")).digest).toBe(pulled.digest);
    expect((await registry.resolve("hangar/postgres-member:15")).digest).toBe(pulled.digest);

    await mountImageRoot(layers, image.manifest.layers, {
      upper: join(work, "upper"),
      work: join(work, "work"),
      target: merged,
    });
    // The label names the bundle's sha256 (part of the layer's cache key): the file in the image is it.
    const digest = /sha256 ([0-9a-f]{64})/.exec(image.config.config.Labels?.["dev.hangar.base"] ?? "")?.[1];
    expect(digest).toBeDefined();
    const inImage = await readFile(join(merged, "usr/local/lib/hangar/pg-member.mjs"));
    expect(createHash("sha256").update(inImage).digest("hex")).toBe(digest);

    const data = join(work, "data");
    await mkdir(data);
    await mkdir(join(merged, "data"));
    const ports = { router: await freePort(), pg: await freePort(), control: await freePort() };
    const env = {
      FLY_MACHINE_ID: "member0",
      HANGAR_PG_LISTEN: "127.0.0.1",
      HANGAR_PG_PORT: String(ports.pg),
      HANGAR_PG_ROUTER_PORT: String(ports.router),
      HANGAR_PG_CONTROL_PORT: String(ports.control),
      HANGAR_PG_CONF: "shared_buffers=16MB;max_connections=30",
      OPERATOR_PASSWORD: "operator-pw",
      REPL_PASSWORD: "repl-pw",
      HANGAR_PG_AGENT_TOKEN: TOKEN,
    };
    // As a runtime runs it: the entrypoint as root (pid 1 of its own pid namespace) in the image's
    // root filesystem, the volume at /data, the host's network.
    const script =
      'mount --rbind /dev "$1/dev" && mount -t proc proc "$1/proc" && mount --bind "$2" "$1/data" && shift 2 && exec chroot "$@"';
    agent = spawn(
      "unshare",
      [
        "--mount",
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "sh",
        "-c",
        script,
        "sh",
        merged,
        data,
        merged,
        "env",
        "-i",
        ...(image.config.config.Env ?? []),
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ...(image.config.config.Entrypoint ?? []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const control = `http://127.0.0.1:${ports.control}`;
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    for (let i = 0; ; i++) {
      const up = await fetch(`${control}/status`, { headers }).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (i > 200 || agent.exitCode !== null) throw new Error(`the agent did not start:\n${output}`);
      await sleep(100);
    }
    const members = [{ id: "member0", address: "127.0.0.1" }];
    const res = await fetch(`${control}/bootstrap`, {
      method: "POST",
      headers,
      body: JSON.stringify({ members }),
    });
    expect(res.status, output).toBe(200);
    expect(await res.json()).toMatchObject({ state: "primary", role: "primary", fenced: false, pg_up: true });
    // postgres runs as the image's postgres user, its files on the volume are that user's.
    const { uid } = await stat(join(data, "postgresql"));
    expect(uid).toBe(999);

    let row: { recovery: boolean } | undefined;
    for (let i = 0; row === undefined; i++) {
      const c = new pg.Client({
        host: "127.0.0.1",
        port: ports.router,
        user: "postgres",
        password: "operator-pw",
        database: "postgres",
      });
      c.on("error", () => undefined);
      row = await c
        .connect()
        .then(() => c.query<{ recovery: boolean }>("SELECT pg_is_in_recovery() AS recovery"))
        .then((r) => r.rows[0])
        .catch(() => undefined)
        .finally(() => c.end().catch(() => undefined));
      if (row === undefined && i > 50) {
        const status = await fetch(`${control}/status`, { headers }).then((r) => r.text());
        throw new Error(`the router did not reach postgres: ${status}\n${output}`);
      }
      if (row === undefined) await sleep(200);
    }
    expect(row).toEqual({ recovery: false });

    // The image's StopSignal to the agent (unshare's child, pid 1 of the namespace): it stops postgres
    // with a fast shutdown and exits 0, which unshare passes on.
    const exited = new Promise<number | null>((resolve) => agent?.once("exit", resolve));
    await signalChildren(agent.pid, "SIGTERM");
    expect(await exited).toBe(0);
    expect(existsSync(join(data, "postgresql/postmaster.pid"))).toBe(false);
  },
  180_000,
);

/** Signals the children of process `pid`. */
async function signalChildren(pid: number | undefined, signal: NodeJS.Signals): Promise<void> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
  for (const child of children.trim().split(" ").filter(Boolean)) process.kill(Number(child), signal);
}
