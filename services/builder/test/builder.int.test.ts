import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFile, cp, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import {
  type BuildCommand,
  type BuildEvent,
  type BuildState,
  buildAggregateId,
  buildDecider,
  buildsStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { DEFAULT_REGISTRY_HOST, INIT_PATH, type ResolvedImage, sandboxArgv } from "@hangar/oci";
import { MasterKeys, sealBuildSecrets } from "@hangar/secrets";
import { createLogger } from "@hangar/telemetry";
import { HARDENED_PROBE, parseSandboxProbe, sandboxProbe, sharedLayersDir } from "@hangar/testkit";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Builder, RESTARTED_MESSAGE } from "../src/builder.js";
import type { BuildDeps } from "../src/image-build.js";
import { BuildNetworks, DEFAULT_BUILD_NETWORK_CIDR } from "../src/network/build-network.js";
import { openBuildDeps } from "../src/platform.js";
import { checkBuilderHost } from "../src/preflight.js";
import { scratchImageRoot } from "./image-root.js";

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, "fixtures");
const NODE_MAJOR = process.versions.node.split(".")[0] as string;
const prefix = `bld${Date.now().toString(36)}`;
const stream = prefixedStream(buildsStream, prefix);
const buckets = {
  blobs: `${prefix}-blobs`,
  registry: `${prefix}-registry`,
  cache: `${prefix}-cache`,
  contexts: `${prefix}-contexts`,
};
const logger = createLogger("builder-test", { level: "silent" });
const APP = "demo";
// The org of each app, as the builder's APPS view would say: demo's images are acme's own.
const ORG_OF: Record<string, string> = { [APP]: "acme", "zeta-app": "zeta" };
// Small enough for a test to pass cheaply (a gzipped context of zeros), large enough for the fixtures.
const MAX_CONTEXT_BYTES = 8 * 2 ** 20;
// The platform's master key, as the gateway (which seals build secrets) and the builders share it.
const KEYS = new MasterKeys(randomBytes(32));
// Layers are unpacked once per run into the folder the global setup made (HANGAR_LAYERS_DIR), which
// the other builds and machines of the run share, as the builder service does.
const images = sharedLayersDir();
// A first make of the node base on a host runs mmdebstrap and downloads Node: minutes, not seconds.
const BASE_TIMEOUT_MS = 600_000;

let nc: NatsConnection;
let store: EventStore;
let requests: CommandHandler<BuildState, BuildCommand, BuildEvent>;
let dataDir: string;
let deps: BuildDeps;
const builders: Builder[] = [];
/** Each builder's metrics, as its ops server serves them. */
const metrics: Registry[] = [];
const connections: NatsConnection[] = [];
let buildCounter = 0;

/** Calls `probe` until it returns a value, or fails after `timeoutMs` saying what it waited for. */
async function poll<T>(
  probe: () => Promise<T | undefined>,
  o: { what: string; timeoutMs: number },
): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${o.timeoutMs} ms waiting for ${o.what}`);
    await sleep(200);
  }
}

/** Tars a directory the way the CLI sends a context, stores it, and appends BuildRequested. */
async function requestBuild(
  dir: string,
  opts: {
    buildArgs?: Record<string, string>;
    tag?: string;
    target?: string;
    network?: boolean;
    gzip?: boolean;
    /** Build secrets, sealed into the request as the gateway does. */
    secrets?: Record<string, string>;
    /** The app the build is for (default APP). */
    app?: string;
  } = {},
): Promise<string> {
  const app = opts.app ?? APP;
  const buildId = `b${Date.now().toString(36)}${++buildCounter}`;
  const { stdout } = await run("tar", [opts.gzip ? "-cz" : "-c", "-f", "-", "-C", dir, "."], {
    encoding: "buffer",
    maxBuffer: 1 << 26,
  });
  const tar = stdout as Buffer;
  const os = await new Objm(nc).create(buckets.contexts);
  await os.putBlob({ name: buildId }, tar);
  await requests.handle(
    buildAggregateId(app, buildId),
    {
      type: "RequestBuild",
      request: {
        buildId,
        app,
        contextObject: buildId,
        contextDigest: `sha256:${createHash("sha256").update(tar).digest("hex")}`,
        dockerfile: "Dockerfile",
        buildArgs: { NODE_MAJOR, ...opts.buildArgs },
        target: opts.target ?? "",
        ...(opts.network ? { network: true } : {}),
        ...(opts.secrets ? { buildSecrets: sealBuildSecrets(KEYS, app, buildId, opts.secrets) } : {}),
        repository: app,
        tag: opts.tag ?? buildId,
      },
    },
    { commandId: `request-${buildId}` },
  );
  return buildId;
}

async function events(buildId: string, app = APP): Promise<BuildEvent[]> {
  const { events } = await store.readAggregate(stream, buildAggregateId(app, buildId));
  return events.map((e) => e.event);
}

/** Waits for the build's outcome and returns all its events. */
async function outcome(buildId: string, timeoutMs = 240_000, app = APP): Promise<BuildEvent[]> {
  return poll(
    async () => {
      const all = await events(buildId, app);
      return all.some((e) => e.type === "BuildSucceeded" || e.type === "BuildFailed") ? all : undefined;
    },
    { what: `build ${buildId} to finish`, timeoutMs },
  );
}

function only<T extends BuildEvent["type"]>(
  all: BuildEvent[],
  type: T,
): Extract<BuildEvent, { type: T }>["data"] {
  const found = all.filter((e) => e.type === type);
  expect(found, `${type} events`).toHaveLength(1);
  return (found[0] as Extract<BuildEvent, { type: T }>).data;
}

function stepsOf(all: BuildEvent[]) {
  return all.flatMap((e) => (e.type === "BuildStepFinished" ? [e.data] : []));
}

/** Runs the image's CMD in a sandbox over its root filesystem and returns what it printed. */
async function runImage(image: ResolvedImage, rootfs: string): Promise<string> {
  const c = image.config.config;
  const argv = sandboxArgv({
    rootfs,
    argv: [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])],
    cwd: c.WorkingDir || "/",
    env: Object.fromEntries(
      (c.Env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
    ),
  });
  const { stdout } = await run(argv[0] as string, argv.slice(1));
  return stdout.trim();
}

/** A pid that no process has: one of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = execFile("true");
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid as number;
}

let leftBuild: string;
let earlyBuild: string;

beforeAll(async () => {
  // As the builder's main does: crun's host preparation included.
  await checkBuilderHost();
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  await ensureStream(store.jsm, stream);
  requests = new CommandHandler(store, stream, buildDecider);
  dataDir = await mkdtemp(join(tmpdir(), "hangar-builder-test-"));
  ({ deps } = await openBuildDeps(nc, dataDir, buckets, 1, images));
  // The node base every fixture starts from, made (minutes of mmdebstrap when the host cache lacks
  // it), pushed and unpacked here, under this hook's timeout: the tests' timeouts are the builds'.
  const base = await deps.resolveImage(`node:${NODE_MAJOR}`);
  await Promise.all(base.manifest.layers.map((l) => deps.layers.dir(l.digest)));

  // Before any builder runs: one build a dead builder of this host had started, one nobody took.
  leftBuild = await requestBuild(join(FIXTURES, "single"));
  await requests.handle(
    buildAggregateId(APP, leftBuild),
    { type: "StartBuild", builderId: `${hostname()}/${await deadPid()}` },
    { commandId: `start-${leftBuild}` },
  );
  earlyBuild = await requestBuild(join(FIXTURES, "single"), { tag: "v1" });

  // Two replicas, as in production: each build must be taken by exactly one.
  for (const name of ["a", "b"]) {
    const bnc = await connect({ servers: inject("natsUrl") });
    connections.push(bnc);
    const opened = await openBuildDeps(bnc, dataDir, buckets, 1, images);
    builders.push(
      await Builder.start({
        nc: bnc,
        store: await EventStore.connect(bnc),
        logger,
        ...opened,
        dataDir,
        stream,
        builderId: `test-${prefix}-${name}/${process.pid}`,
        registry: metrics[metrics.push(new Registry()) - 1],
        maxContextBytes: MAX_CONTEXT_BYTES,
        orgOf: (app) => ORG_OF[app],
        keys: KEYS,
        networks: new BuildNetworks(DEFAULT_BUILD_NETWORK_CIDR),
      }),
    );
  }
}, BASE_TIMEOUT_MS);

afterAll(async () => {
  for (const b of builders) await b.stop();
  for (const c of connections) await c.drain();
  await nc?.drain();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("the builder", () => {
  it("fails a build its dead predecessor on this host left unfinished", async () => {
    const all = await outcome(leftBuild, 30_000);
    expect(only(all, "BuildFailed").message).toBe(RESTARTED_MESSAGE);
    expect(stepsOf(all)).toHaveLength(0);
  });

  it("builds a single-stage image requested before it started: COPY, ADD, RUN as root and as USER, config", async () => {
    const all = await outcome(earlyBuild);
    const started = only(all, "BuildStarted");
    expect(builders.map((b) => b.builderId)).toContain(started.builderId);
    const ok = only(all, "BuildSucceeded");
    expect(ok.imageRef).toBe(`${DEFAULT_REGISTRY_HOST}/${APP}@${ok.manifestDigest}`);
    expect(ok.totalSteps).toBe(12);
    expect(ok.imageSize).toBeGreaterThan(0);
    const steps = stepsOf(all);
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(steps.map((s) => s.line)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    const runStep = steps[4];
    expect(runStep?.instruction).toMatch(/^RUN node -e/);
    expect(runStep?.output).toContain("installing single");
    expect(runStep?.layerDigest).toMatch(/^sha256:/);
    // Config-only steps make no layer.
    expect(steps[1]?.layerDigest).toBe("");

    const image = await deps.registry.resolve(`${APP}:v1`);
    expect(image.digest).toBe(ok.manifestDigest);
    // Its time, in the builders' metrics by app and outcome.
    const counts = await Promise.all(
      metrics.map(async (r) =>
        ((await r.getSingleMetric("hangar_build_duration_seconds")?.get())?.values ?? []).filter(
          (v) =>
            (v as { metricName?: string }).metricName === "hangar_build_duration_seconds_count" &&
            v.labels.app === APP,
        ),
      ),
    );
    expect(counts.flat().some((v) => v.labels.outcome === "succeeded" && v.value >= 1)).toBe(true);
    const c = image.config.config;
    expect(c.Cmd).toEqual(["node", "server.js"]);
    expect(c.WorkingDir).toBe("/app");
    expect(c.User).toBe("node");
    expect(c.Env).toContain("GREETING=hello");
    expect(c.ExposedPorts).toEqual({ "8080/tcp": {} });
    expect(c.Labels?.["org.opencontainers.image.title"]).toBe("single");
    expect(image.config.history?.map((h) => h.created_by).slice(-3)).toEqual([
      "EXPOSE 8080",
      'LABEL org.opencontainers.image.title="single"',
      'CMD ["node", "server.js"]',
    ]);
    const { root: rootfs, release } = await scratchImageRoot(deps.layers, image);
    try {
      expect((await readFile(join(rootfs, "app/run.txt"), "utf8")).trim()).toBe("hello from RUN");
      // COPY from the context: root's files, whoever owned them in the tar.
      const copied = await stat(join(rootfs, "app/server.js"));
      expect([copied.uid, copied.gid]).toEqual([0, 0]);
      expect(await stat(join(rootfs, "app/package.json"))).toBeTruthy();
      // ADD unpacked the archive, keeping its owners.
      const asset = await stat(join(rootfs, "opt/assets/hello.txt"));
      expect([asset.uid, asset.gid]).toEqual([1234, 1234]);
      expect(await readFile(join(rootfs, "opt/assets/hello.txt"), "utf8")).toBe("an asset\n");
      // The RUN after USER node ran as node, and what it wrote is node's.
      const made = await stat(join(rootfs, "home/node/made.txt"));
      expect([made.uid, made.gid]).toEqual([1000, 1000]);
      expect(await readFile(join(rootfs, "home/node/made.txt"), "utf8")).toBe("1000");
      expect(await runImage(image, rootfs)).toBe("hello from hello from RUN");
    } finally {
      await release();
    }
  }, 180_000);

  it("builds a multi-stage image, then reuses the dependency steps after a code-only change", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-builder-multi-"));
    try {
      await cp(join(FIXTURES, "multi"), dir, { recursive: true });
      const first = await outcome(await requestBuild(dir));
      const ok1 = only(first, "BuildSucceeded");
      const image1 = await deps.registry.resolve(`${APP}@${ok1.manifestDigest}`);
      const { root: rootfs, release } = await scratchImageRoot(deps.layers, image1);
      try {
        expect(await runImage(image1, rootfs)).toBe("BUILT ONCE!");
        // Only dist/ made it into the runtime image: no sources, no node_modules.
        expect(await stat(join(rootfs, "app/node_modules")).catch(() => undefined)).toBeUndefined();
        expect(await stat(join(rootfs, "src")).catch(() => undefined)).toBeUndefined();
      } finally {
        await release();
      }

      await writeFile(join(dir, "src/message.txt"), "built twice\n");
      const second = await outcome(await requestBuild(dir));
      const ok2 = only(second, "BuildSucceeded");
      expect(ok2.manifestDigest).not.toBe(ok1.manifestDigest);
      const cached = (all: BuildEvent[]) =>
        Object.fromEntries(stepsOf(all).map((s) => [s.instruction, s.cached ?? false]));
      const steps = cached(second);
      expect(steps["COPY package.json ./"]).toBe(true);
      expect(steps["COPY vendor ./vendor/"]).toBe(true);
      expect(steps["RUN npm install --offline --no-audit --no-fund"]).toBe(true);
      expect(steps["COPY src ./src/"]).toBe(false);
      expect(steps["RUN node src/build.js"]).toBe(false);
      expect(steps["COPY --from=build /src/dist ./dist"]).toBe(false);
      expect(ok2.cachedSteps).toBe(Object.values(steps).filter(Boolean).length);
      expect(ok2.totalSteps).toBe(11);
      const image2 = await deps.registry.resolve(`${APP}@${ok2.manifestDigest}`);
      const { root: rootfs2, release: release2 } = await scratchImageRoot(deps.layers, image2);
      try {
        expect(await runImage(image2, rootfs2)).toBe("BUILT TWICE!");
      } finally {
        await release2();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("fails a build whose RUN exits non-zero, with its line, output and exit code, and streams the output live", async () => {
    const lines: Array<{ step: number; stream: string; line: string }> = [];
    const sub = nc.subscribe(`logs.build.${APP}.>`, {
      callback: (_err, msg) => {
        lines.push(msg.json());
      },
    });
    try {
      const all = await outcome(await requestBuild(join(FIXTURES, "failing")));
      const failed = only(all, "BuildFailed");
      expect(failed.line).toBe(4);
      expect(failed.instruction).toBe('RUN echo "about to fail" && echo "oops on stderr" >&2 && exit 3');
      expect(failed.message).toMatch(/^line 4: .* failed with exit code 3$/);
      expect(failed.output).toContain("about to fail");
      expect(failed.output).toContain("oops on stderr");
      expect(stepsOf(all).map((s) => s.line)).toEqual([2, 3]);
      await poll(async () => (lines.some((l) => l.line === "oops on stderr") ? true : undefined), {
        what: "the failing step's output on the live log subject",
        timeoutMs: 5_000,
      });
      expect(lines).toContainEqual({
        ts: expect.any(String),
        step: 3,
        stream: "stderr",
        line: "oops on stderr",
      });
      expect(lines).toContainEqual({
        ts: expect.any(String),
        step: 2,
        stream: "stdout",
        line: "step output before failing",
      });
    } finally {
      sub.unsubscribe();
    }
  });

  it("fails a build with an unsupported instruction, naming it and its line", async () => {
    const all = await outcome(await requestBuild(join(FIXTURES, "unsupported")), 30_000);
    const failed = only(all, "BuildFailed");
    expect(failed.line).toBe(3);
    expect(failed.instruction).toBe("COPY --parents Dockerfile /x/");
    expect(failed.message).toMatch(/^line 3: COPY --parents is not supported by Hangar's builder/);
  });

  it("deletes the context of every ended build: left, succeeded and failed ones", async () => {
    const failed = await requestBuild(join(FIXTURES, "unsupported"));
    await outcome(failed, 30_000);
    const contexts = await new Objm(nc).open(buckets.contexts);
    for (const buildId of [leftBuild, earlyBuild, failed]) {
      await outcome(buildId);
      // The context goes right after the outcome is recorded, so allow a moment.
      await poll(async () => ((await contexts.info(buildId))?.deleted ? true : undefined), {
        what: `build ${buildId}'s context to be deleted`,
        timeoutMs: 10_000,
      });
    }
  });

  it("fails a build whose context unpacks past the limit, however small it was sent", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-builder-large-"));
    try {
      await writeFile(join(dir, "Dockerfile"), "FROM scratch\nCOPY zeros /zeros\n");
      await writeFile(join(dir, "zeros"), Buffer.alloc(MAX_CONTEXT_BYTES + 1));
      const all = await outcome(await requestBuild(dir, { gzip: true }), 30_000);
      expect(only(all, "BuildFailed").message).toMatch(
        /^the build context unpacks to more than 8 MiB: leave files out with \.dockerignore, or raise HANGAR_BUILDER_MAX_CONTEXT_MB/,
      );
      expect(stepsOf(all)).toHaveLength(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses FROM and COPY --from of another org's app image with the unknown-base message, and lets its own org use it", async () => {
    await outcome(earlyBuild); // demo:v1 exists once it has succeeded
    const dir = await mkdtemp(join(tmpdir(), "hangar-builder-foreign-"));
    const build = async (app: string, dockerfile: string) => {
      await writeFile(join(dir, "Dockerfile"), dockerfile);
      return outcome(await requestBuild(dir, { app }), 60_000, app);
    };
    const failure = async (app: string, dockerfile: string) =>
      only(await build(app, dockerfile), "BuildFailed").message ?? "";
    try {
      // Each form of ref is refused exactly as a ref of that form that names nothing.
      for (const host of ["", `${DEFAULT_REGISTRY_HOST}/`]) {
        const missing = `${host}nosuch-base:v1`;
        const unknown = await failure("zeta-app", `FROM ${missing}\n`);
        const ref = `${host}${APP}:v1`;
        const from = await failure("zeta-app", `FROM ${ref}\n`);
        expect(from).toBe(unknown.replaceAll(missing, ref));
        const copy = await failure("zeta-app", `FROM scratch\nCOPY --from=${ref} /etc /etc\n`);
        expect(copy).toBe(unknown.replaceAll(missing, ref).replace(/^line 1:/, "line 2:"));
      }
      only(await build(APP, `FROM ${APP}:v1\n`), "BuildSucceeded");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("opens the build secrets sealed in the request for RUN --mount=type=secret, and keeps their value out of the BUILDS stream", async () => {
    const value = `tok-${randomBytes(6).toString("hex")}`;
    const buildId = await requestBuild(join(FIXTURES, "secret"), { secrets: { token: value } });
    const all = await outcome(buildId);
    only(all, "BuildSucceeded");
    const requested = only(all, "BuildRequested");
    expect(Object.keys(requested.buildSecrets?.values ?? {})).toEqual(["token"]);
    // The step printed it; its recorded output says [secret], and no event holds the value.
    expect(stepsOf(all).at(-1)?.output).toContain("token: [secret]");
    expect(
      JSON.stringify(all, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v)),
    ).not.toContain(value);
  });

  it("refuses ADD of a URL on the host's own addresses (NATS here) with a clear message and the line", async () => {
    const all = await outcome(await requestBuild(join(FIXTURES, "add-url")), 30_000);
    const failed = only(all, "BuildFailed");
    expect(failed.line).toBe(2);
    expect(failed.message).toMatch(
      /^line 2: ADD http:\/\/127.0.0.1:4222\/: 127.0.0.1 is an address builds may not reach/,
    );
  });
});

/** The hardened fixture's context, with the sandbox probe the machines' exec test runs too. */
async function sandboxContext(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hangar-builder-sandbox-"));
  await cp(join(FIXTURES, "hardened"), dir, { recursive: true });
  await copyFile(await sandboxProbe(), join(dir, "sandbox-probe"));
  return dir;
}

describe("RUN steps in the machines' sandbox", () => {
  // The builder runs in this process: its pid is a host pid the step must not see. catatonit runs
  // as pid 1 under the name of the path it is bound at.
  const sandboxArgs = { BUILDER_PID: String(process.pid), SANDBOX_INIT: basename(INIT_PATH) };

  it("refuse mknod, mount, module loading and user namespaces to the image's root, with podman's capabilities, seccomp and a pid namespace; a USER step runs as the user", async () => {
    const dir = await sandboxContext();
    try {
      const all = await outcome(await requestBuild(dir, { buildArgs: sandboxArgs }));
      const steps = stepsOf(all);
      const probeStep = steps.find((s) => s.instruction?.includes("sandbox-probe |"));
      const failed = all.find((e) => e.type === "BuildFailed");
      expect(failed?.data, `the build failed: ${JSON.stringify(failed?.data)}`).toBeUndefined();
      const ok = only(all, "BuildSucceeded");
      const probe = parseSandboxProbe(probeStep?.output ?? "");
      console.log(`sandbox probe in a RUN step: ${JSON.stringify(probe)}`);
      expect(probe).toMatchObject(HARDENED_PROBE);
      expect(probe.pid1).toBe(basename(INIT_PATH));
      expect(Number(probe.processes)).toBeLessThan(10);
      expect(probeStep?.output).not.toContain("FAIL");

      // Root's chown inside the step, and the USER step's files, are recorded with the image's ids.
      const image = await deps.registry.resolve(`${APP}@${ok.manifestDigest}`);
      const { root: rootfs, release } = await scratchImageRoot(deps.layers, image);
      try {
        const data = await stat(join(rootfs, "data"));
        expect([data.uid, data.gid]).toEqual([1000, 1000]);
        const made = await stat(join(rootfs, "data/by-node"));
        expect([made.uid, made.gid]).toEqual([1000, 1000]);
        expect((await readFile(join(rootfs, "data/uid"), "utf8")).split("\t")[0]).toBe("1000");
        // The probe's mount point, made by root in the step, is root's; nothing is the range's.
        const mnt = await stat(join(rootfs, "tmp/hangar-probe-mnt"));
        expect([mnt.uid, mnt.gid]).toEqual([0, 0]);
      } finally {
        await release();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fail the build when a check fails (negative control: another capability set expected)", async () => {
    const dir = await sandboxContext();
    try {
      const expected = "000001ffffffffff";
      const all = await outcome(
        await requestBuild(dir, { buildArgs: { ...sandboxArgs, EXPECTED_CAPS: expected } }),
      );
      const failed = only(all, "BuildFailed");
      expect(failed.instruction).toMatch(/sandbox-probe \|/);
      expect(failed.message).toMatch(/failed with exit code 1$/);
      expect(failed.output).toContain(`FAIL: CapEff is ${HARDENED_PROBE.CapEff}, expected ${expected}`);
      // Only the check made to fail did.
      expect(failed.output?.match(/^FAIL:/gm)).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("have the build's network namespace by default, with its resolv.conf, or only loopback with --network=none; an /etc/hosts always", async () => {
    const seen = async (fixture: string) => {
      const all = await outcome(await requestBuild(join(FIXTURES, fixture)));
      const ok = only(all, "BuildSucceeded");
      const { root: rootfs, release } = await scratchImageRoot(
        deps.layers,
        await deps.registry.resolve(`${APP}@${ok.manifestDigest}`),
      );
      try {
        // crun's bind targets for resolv.conf and hosts stay out of the layer: the base image has neither.
        expect(await stat(join(rootfs, "etc/resolv.conf")).catch(() => undefined)).toBeUndefined();
        expect(await stat(join(rootfs, "etc/hosts")).catch(() => undefined)).toBeUndefined();
        return {
          interfaces: Number((await readFile(join(rootfs, "interfaces"), "utf8")).trim()),
          resolv: (await readFile(join(rootfs, "resolv"), "utf8")).trim(),
          localhost: (await readFile(join(rootfs, "localhost"), "utf8")).trim().split(/\s+/)[0],
        };
      } finally {
        await release();
      }
    };
    // localhost resolves from the step's /etc/hosts, with or without network (as under BuildKit).
    expect(await seen("network")).toEqual({ interfaces: 1, resolv: "yes", localhost: "::1" });
    expect(await seen("network-none")).toEqual({ interfaces: 0, resolv: "no", localhost: "::1" });
  }, 180_000);
});
