// The images of issue 18, as `pnpm images` builds them into this host's container storage (buildah,
// incremental: layers cached under $HANGAR_CACHE_DIR), checked as a runtime runs them (podman):
// - each service image's entrypoint runs its service from dist/ (no TypeScript, no tsx) as uid 10001,
//   and reaches /health against a real nats-server; the builder and the host agent run as root, and
//   unprivileged the builder stops with its own preflight message;
// - no image carries a dev dependency or a TypeScript source;
// - nats:dev runs Debian's nats-server as uid 10001 with JetStream, postgres:dev answers SQL;
// - Hangar's own builder builds a service target of the same Dockerfile, its NODE_IMAGE pulled from
//   a local registry (Debian's docker-registry), into the same /app tree buildah made.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyLayer } from "@hangar/oci";
import { freePort, poll, startTestRegistry, type TestRegistry } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  buildImages,
  type ImageOutcome,
  imagesContextDir,
  NATS_IMAGE,
  NODE_IMAGE,
  POSTGRES_IMAGE,
  ROOT_SERVICES,
  runCommand,
  SERVICE_UID,
  serviceImage,
  treeDigest,
} from "../../scripts/images.js";
import { SERVICES } from "../../scripts/platform.js";
import { type BuildDeps, buildImage } from "../../services/builder/src/image-build.js";
import { openBuildDeps } from "../../services/builder/src/platform.js";

const log = (line: string) => process.stdout.write(`${line}\n`);
const names: string[] = [];
let outcomes: ImageOutcome[] = [];
let work: string;

// podman's default rlimits are above what this host lets a process set: the caller's own.
const nofile = execFileSync("sh", ["-c", "ulimit -Hn"]).toString().trim();
const podman = (args: string[]) => runCommand("podman", args);
const podmanRun = (name: string, image: string, env: Record<string, string>, args: string[] = []) => {
  names.push(name);
  return podman([
    "run",
    "--detach",
    "--name",
    name,
    "--network",
    "host",
    "--ulimit",
    `nofile=${nofile}:${nofile}`,
    "--ulimit",
    "nproc=4096:4096",
    ...Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
    image,
    ...args,
  ]);
};
const config = async (image: string) =>
  (
    JSON.parse(await runCommand("buildah", ["inspect", "--type", "image", image])) as {
      OCIv1: { config: { User?: string; Entrypoint?: string[]; WorkingDir?: string; Env?: string[] } };
    }
  ).OCIv1.config;

/** Mounts `image`'s root filesystem (a buildah working container) and returns its path. */
async function mountImage(image: string): Promise<string> {
  const ctr = (await runCommand("buildah", ["from", "--pull-never", image])).trim();
  names.push(`buildah:${ctr}`);
  return (await runCommand("buildah", ["mount", ctr])).trim();
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "hangar-service-images-"));
  // A fresh host makes the nats-server base (mmdebstrap) and the host agent's packages: minutes.
  outcomes = await buildImages({ onProgress: log });
}, 1_800_000);

afterAll(async () => {
  for (const name of names) {
    if (name.startsWith("buildah:")) await runCommand("buildah", ["rm", name.slice(8)]).catch(() => "");
    else await podman(["rm", "--force", "--time", "0", name]).catch(() => "");
  }
  if (work) await rm(work, { recursive: true, force: true });
});

it("builds every image into container storage, and a second run finds them up to date", async () => {
  expect(outcomes.map((o) => o.image).sort()).toEqual(
    [NODE_IMAGE, NATS_IMAGE, POSTGRES_IMAGE, ...SERVICES.map(serviceImage)].sort(),
  );
  const again = await buildImages({ onProgress: log });
  expect(again.filter((o) => o.built)).toEqual([]);
  expect(again.map((o) => o.id).sort()).toEqual(outcomes.map((o) => o.id).sort());
}, 600_000);

describe("service images", () => {
  it("run node services/<name>/dist/main.js in /app, as uid 10001 but for the builder and the host agent (root)", async () => {
    for (const service of SERVICES) {
      const c = await config(serviceImage(service));
      // The proxy makes V8 isolates for edge apps (isolated-vm), which Node 20 allows only without
      // its startup snapshot (docs/edge.md).
      const flags = service === "proxy" ? ["--no-node-snapshot"] : [];
      expect(c.Entrypoint, service).toEqual(["node", ...flags, `services/${service}/dist/main.js`]);
      expect(c.WorkingDir, service).toBe("/app");
      expect(c.Env, service).toContain("NODE_ENV=production");
      if (ROOT_SERVICES.includes(service)) expect(c.User ?? "", service).toMatch(/^(|0|root)$/);
      else expect(c.User, service).toBe(`${SERVICE_UID}:${SERVICE_UID}`);
    }
  });

  it("carry no dev dependency and no TypeScript source", async () => {
    const repo = join(import.meta.dirname, "../..");
    // Every package a workspace package.json names only as a dev dependency.
    const prod = new Set<string>();
    const dev = new Set<string>();
    for (const dir of [".", "proto", "tests", "cli", "libs", "services"]) {
      const pkgs = dir === "libs" || dir === "services" ? await readdir(join(repo, dir)) : [""];
      for (const p of pkgs) {
        const json = JSON.parse(await readFile(join(repo, dir, p, "package.json"), "utf8")) as {
          dependencies?: Record<string, string>;
          devDependencies?: Record<string, string>;
        };
        for (const name of Object.keys(json.dependencies ?? {})) prod.add(name);
        for (const name of Object.keys(json.devDependencies ?? {})) dev.add(name);
      }
    }
    const devOnly = [...dev].filter((name) => !prod.has(name));
    expect(devOnly).toEqual(expect.arrayContaining(["typescript", "vitest", "tsx", "@biomejs/biome"]));
    for (const image of [serviceImage("gateway"), serviceImage("host-agent")]) {
      const root = await mountImage(image);
      const store = await readdir(join(root, "app/node_modules/.pnpm"));
      // .pnpm entries are <name>@<version> with / in scoped names written as +.
      const installed = store.map((entry) =>
        entry.replace(/^(@[^+]+)\+/, "$1/").replace(/@[^@_]+(_.*)?$/, ""),
      );
      expect(installed.length, image).toBeGreaterThan(50);
      // A dev dependency of ours is there only if an installed package needs it (protobufjs needs @types/node).
      const needed = new Set<string>();
      for (const [i, entry] of store.entries()) {
        const json = await readFile(
          join(root, "app/node_modules/.pnpm", entry, "node_modules", installed[i] ?? "", "package.json"),
          "utf8",
        ).catch(() => "{}");
        const meta = JSON.parse(json) as Record<string, Record<string, string> | undefined>;
        for (const field of ["dependencies", "optionalDependencies", "peerDependencies"])
          for (const name of Object.keys(meta[field] ?? {})) needed.add(name);
      }
      expect(
        installed.filter((name) => devOnly.includes(name) && !needed.has(name)),
        image,
      ).toEqual([]);
      const ts: string[] = [];
      const walk = async (rel: string): Promise<void> => {
        for (const e of await readdir(join(root, "app", rel), { withFileTypes: true })) {
          const path = rel === "" ? e.name : `${rel}/${e.name}`;
          if (e.isDirectory() && e.name !== "node_modules") await walk(path);
          else if (e.isFile() && /\.(c|m)?ts$/.test(e.name)) ts.push(path);
        }
      };
      await walk("");
      expect(ts, image).toEqual([]);
      expect(await readdir(join(root, "app/services/gateway"))).not.toContain("src");
    }
  });

  it("start their service: /health against a real nats-server as uid 10001; the builder refuses to run unprivileged", async () => {
    const natsUrl = inject("natsUrl");
    const id = randomBytes(3).toString("hex");
    const started: Array<{ service: string; name: string; ops: number }> = [];
    for (const service of SERVICES.filter((s) => !ROOT_SERVICES.includes(s))) {
      const ops = await freePort();
      const env: Record<string, string> = {
        HANGAR_NATS_URL: natsUrl,
        HANGAR_HOME: "/tmp/hangar",
        [`HANGAR_${service.toUpperCase().replace(/-/g, "_")}_OPS_PORT`]: String(ops),
      };
      if (service === "gateway") {
        env.HANGAR_GATEWAY_PORT = String(await freePort());
        env.HANGAR_GATEWAY_TOKEN_KEY = randomBytes(32).toString("base64");
      }
      if (service === "proxy") {
        env.HANGAR_PROXY_PORT = String(await freePort());
        env.HANGAR_PROXY_HOST = "127.0.0.1";
      }
      const name = `hangar-image-test-${service}-${id}`;
      await podmanRun(name, serviceImage(service), env);
      started.push({ service, name, ops });
    }
    for (const { service, name, ops } of started) {
      await poll(
        async () => {
          const res = await fetch(`http://127.0.0.1:${ops}/health`).catch(() => undefined);
          if (res?.status === 200) return true;
          const state = (await podman(["inspect", "--format", "{{.State.Status}}", name])).trim();
          if (state === "exited")
            throw new Error(`${service} exited: ${await podman(["logs", name]).catch((e) => String(e))}`);
          return undefined;
        },
        { what: `${service}'s /health in its image`, timeoutMs: 120_000, intervalMs: 250 },
      );
      expect((await podman(["exec", name, "id", "-u"])).trim(), service).toBe(String(SERVICE_UID));
    }

    // Unprivileged, the builder's preflight stops it with what it needs.
    const builder = `hangar-image-test-builder-${id}`;
    await podmanRun(builder, serviceImage("builder"), {
      HANGAR_NATS_URL: natsUrl,
      HANGAR_BUILDER_NETWORK: "none",
    });
    const exit = await poll(
      async () => {
        const state = (
          await podman(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", builder])
        ).trim();
        return state.startsWith("exited") ? state : undefined;
      },
      { what: "the unprivileged builder to stop", timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(exit).not.toBe("exited 0");
    expect(await podman(["logs", builder])).toMatch(
      /run the builder as root|RUN steps run in the machines' sandbox/,
    );
  }, 300_000);
});

describe("base images", () => {
  it("nats:dev runs Debian's nats-server as uid 10001 with JetStream in /data", async () => {
    const port = await freePort();
    const name = `hangar-image-test-nats-${randomBytes(3).toString("hex")}`;
    await podmanRun(name, NATS_IMAGE, {}, ["-js", "-sd", "/data", "-a", "127.0.0.1", "-p", String(port)]);
    let nc: NatsConnection | undefined;
    try {
      const logs = () => runCommand("sh", ["-c", `podman logs ${name} 2>&1`]).catch((e: Error) => e.message);
      nc = await poll(
        () => connect({ servers: `nats://127.0.0.1:${port}`, timeout: 2_000 }).catch(() => undefined),
        { what: "nats:dev to accept connections", timeoutMs: 60_000, intervalMs: 250 },
      ).catch(async (error: Error) => {
        throw new Error(`${error.message}; its log:\n${await logs()}`);
      });
      const info = nc.info;
      expect(info?.jetstream).toBe(true);
      expect((await podman(["exec", name, "id", "-u"])).trim()).toBe(String(SERVICE_UID));
    } finally {
      await nc?.close();
    }
  }, 120_000);

  it("postgres:dev initialises a database and answers SQL", async () => {
    const port = await freePort();
    const name = `hangar-image-test-postgres-${randomBytes(3).toString("hex")}`;
    await podmanRun(name, POSTGRES_IMAGE, { POSTGRES_PASSWORD: "images-test" }, [
      "postgres",
      "-c",
      `port=${port}`,
      "-c",
      "listen_addresses=127.0.0.1",
    ]);
    const client = await poll(
      async () => {
        const c = new pg.Client({
          connectionString: `postgres://postgres:images-test@127.0.0.1:${port}/postgres`,
        });
        return c.connect().then(
          () => c,
          () => undefined,
        );
      },
      { what: "postgres:dev to accept connections", timeoutMs: 120_000, intervalMs: 500 },
    );
    try {
      const { rows } = await client.query<{ v: string }>("select current_setting('server_version_num') as v");
      expect(rows[0]?.v).toMatch(/^15/);
    } finally {
      await client.end();
    }
  }, 180_000);
});

describe("Hangar's builder", () => {
  let registry: TestRegistry | undefined;
  let nc: NatsConnection | undefined;
  afterAll(async () => {
    await registry?.stop();
    await nc?.drain();
  });

  it("builds the placement target of the same Dockerfile on NODE_IMAGE from a local registry, into buildah's /app", async () => {
    registry = await startTestRegistry();
    await runCommand("skopeo", [
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `containers-storage:${NODE_IMAGE}`,
      `docker://${registry.host}/hangar/node:dev`,
    ]);
    const natsConnection = await connect({ servers: inject("natsUrl") });
    nc = natsConnection;
    const prefix = `images${Date.now().toString(36)}`;
    const { deps } = (await openBuildDeps(
      natsConnection,
      join(work, "builder"),
      { blobs: `${prefix}-blobs`, registry: `${prefix}-registry`, cache: `${prefix}-cache` },
      1,
      { upstreams: { [registry.host]: registry.url } },
    )) as { deps: BuildDeps };
    const context = imagesContextDir();
    await buildImage(
      deps,
      {
        contextDir: context,
        dockerfile: "Dockerfile",
        workDir: join(work, "build"),
        buildArgs: { NODE_IMAGE: `${registry.host}/hangar/node:dev` },
        target: "placement",
        repository: "hangar/placement",
        tag: "dev",
        network: "none",
      },
      {},
    );
    const image = await deps.registry.resolve("hangar/placement:dev");
    const c = image.config.config;
    const buildahConfig = await config(serviceImage("placement"));
    expect(c.Entrypoint).toEqual(buildahConfig.Entrypoint);
    expect(c.User).toBe(buildahConfig.User);
    expect(c.WorkingDir).toBe("/app");
    expect(c.Env).toContain("NODE_ENV=production");
    const root = join(work, "hangar-rootfs");
    for (const layer of image.manifest.layers)
      await applyLayer(await deps.blobs.getStream(layer.digest), root, { mode: "flatten" });
    const buildahRoot = await mountImage(serviceImage("placement"));
    expect(await treeDigest(join(root, "app"))).toBe(await treeDigest(join(buildahRoot, "app")));
    expect((await readFile(join(root, "etc/passwd"), "utf8")).split("\n")).toContain(
      `hangar:x:${SERVICE_UID}:${SERVICE_UID}::/nonexistent:/usr/sbin/nologin`,
    );
  }, 600_000);
});
