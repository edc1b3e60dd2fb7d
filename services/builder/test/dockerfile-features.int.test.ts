import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { hostArchitecture, type ResolvedImage } from "@hangar/oci";
import { sharedLayersDir } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { OutputLine } from "../src/command.js";
import { BuildError } from "../src/domain/errors.js";
import { type BuildDeps, type BuildInput, buildImage } from "../src/image-build.js";
import { openBuildDeps } from "../src/platform.js";
import { checkBuilderHost } from "../src/preflight.js";
import { scratchImageRoot } from "./image-root.js";

/*
 * One Dockerfile using most of BuildKit's features, built by the real builder (crun sandbox, layer
 * cache, registry over NATS): its image config and files, a cache mount kept between builds, a
 * secret that reaches the RUN and nothing else, a child image running the ONBUILD trigger, and ADD
 * of a URL from the package registry (the only outside host these machines reach).
 * The first build makes the node base image when the host cache lacks it, hence the long timeouts.
 */

const FIXTURE = join(import.meta.dirname, "fixtures", "features");
const NODE_MAJOR = process.versions.node.split(".")[0] as string;
const prefix = `bfeat${Date.now().toString(36)}`;
const SECRET = `s3cr3t-${Date.now().toString(36)}-value`;
// A small, immutable npm tarball and its digest.
const TARBALL = "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz";
const TARBALL_SHA256 = "sha256:7b75c1057198cf97696909a9bee176c9c5e9bcb5b03bf3ecef2f484defadd51e";

let nc: NatsConnection;
let deps: BuildDeps;
let dataDir: string;
let n = 0;

async function build(
  context: string,
  extra: Partial<BuildInput> = {},
): Promise<{ image: ResolvedImage; lines: Array<{ step: number } & OutputLine> }> {
  const lines: Array<{ step: number } & OutputLine> = [];
  const workDir = join(dataDir, `work-${++n}`);
  const tag = `t${n}`;
  try {
    await buildImage(
      deps,
      {
        contextDir: context,
        workDir,
        buildArgs: { NODE_MAJOR },
        repository: "features",
        tag,
        network: "none",
        cacheMountDir: join(dataDir, "cache-mounts", "features"),
        secret: async (id) => (id === "token" ? SECRET : undefined),
        ...extra,
      },
      { onOutput: (step, l) => lines.push({ step, ...l }) },
    );
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  return { image: await deps.registry.resolve(`features:${tag}`), lines };
}

async function layerBytes(image: ResolvedImage): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const layer of image.manifest.layers) {
    const chunks: Buffer[] = [];
    for await (const c of await deps.blobs.getStream(layer.digest)) chunks.push(c as Buffer);
    out.push(gunzipSync(Buffer.concat(chunks)));
  }
  return out;
}

async function failure(p: Promise<unknown>): Promise<BuildError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BuildError) return err;
    throw err;
  }
  throw new Error("expected the build to fail");
}

beforeAll(async () => {
  await checkBuilderHost();
  nc = await connect({ servers: inject("natsUrl") });
  dataDir = await mkdtemp(join(tmpdir(), "hangar-features-"));
  // Layers unpacked once per run, in the folder the global setup made (HANGAR_LAYERS_DIR).
  ({ deps } = await openBuildDeps(
    nc,
    dataDir,
    { blobs: `${prefix}-blobs`, registry: `${prefix}-registry`, cache: `${prefix}-cache` },
    1,
    sharedLayersDir(),
  ));
}, 120_000);

afterAll(async () => {
  await nc?.drain();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("Dockerfile features, built end to end", () => {
  it("builds heredocs, SHELL, --chmod, cache/secret/bind mounts, --network=none, and records the config", async () => {
    const { image, lines } = await build(FIXTURE);
    expect(lines[0]).toEqual({
      step: 0,
      stream: "stderr",
      line: "# syntax=docker/dockerfile:1 ignored: Hangar's builder implements the Dockerfile frontend itself",
    });
    const c = image.config.config;
    expect(c.Shell).toEqual(["/bin/sh", "-e", "-c"]);
    expect(c.Volumes).toEqual({ "/data": {} });
    expect(c.Healthcheck).toEqual({ Test: ["CMD", "/app/hello.sh"], Interval: 30e9, Retries: 2 });
    expect(c.OnBuild).toEqual(['RUN echo "child of features" > /app/onbuild.txt']);
    expect(image.config.author).toBe("Hangar tests");

    const { root, release } = await scratchImageRoot(deps.layers, image);
    try {
      const hello = join(root, "app/hello.sh");
      expect(await readFile(hello, "utf8")).toBe(
        `#!/bin/sh\necho "hello from linux/${hostArchitecture()}"\n`,
      );
      expect((await stat(hello)).mode & 0o777).toBe(0o750);
      expect(await readFile(join(root, "app/heredoc.txt"), "utf8")).toBe("heredoc ran\n");
      expect(await readFile(join(root, "app/script.txt"), "utf8")).toBe("/dev/pipes/EOF");
      expect(await readFile(join(root, "app/cache-runs.txt"), "utf8")).toBe("run\n");
      expect(await readFile(join(root, "app/secret-ok.txt"), "utf8")).toBe("ok\n");
      expect(await readFile(join(root, "app/bound.txt"), "utf8")).toBe("from the context\n");
      // WORKDIR after USER makes the folder the user's, as BuildKit does, so the user can write there.
      expect((await stat(join(root, "home/node/work"))).uid).toBe(1000);
      expect((await stat(join(root, "home/node/work/made-by-node"))).uid).toBe(1000);
      // Nothing of the mounts is in the image: no cache folder, no secret file, no bind target's files.
      for (const p of ["cache/runs", "run/secrets/token", "tmp/again", "mnt/data/input.txt"]) {
        await expect(stat(join(root, p))).rejects.toThrow(/ENOENT/);
      }
    } finally {
      await release();
    }
    // The bind was read-write, but its writes were thrown away.
    expect(await readFile(join(FIXTURE, "data/input.txt"), "utf8")).toBe("from the context\n");
    // The secret was readable in the RUN, and is in no layer, not in the config, not in the output.
    expect(lines.some((l) => l.line === "secret is [secret]")).toBe(true);
    expect(JSON.stringify(lines)).not.toContain(SECRET);
    expect(JSON.stringify(image.config)).not.toContain(SECRET);
    for (const tar of await layerBytes(image)) expect(tar.includes(SECRET)).toBe(false);
  }, 300_000);

  it("runs a base image's ONBUILD trigger in the child, keeps the app's cache mount between builds, and fails a required secret that is missing", async () => {
    // The parent is the first test's image, all of it from the layer cache.
    const parent = await build(FIXTURE);
    const dir = await mkdtemp(join(tmpdir(), "hangar-features-child-"));
    try {
      const write = (df: string) => writeFile(join(dir, "Dockerfile"), df);
      await write(
        `FROM features@${parent.image.digest}\nRUN cat /app/onbuild.txt\nRUN --mount=type=cache,id=runs,target=/c cat /c/runs\n`,
      );
      const child = await build(dir);
      expect(child.lines.some((l) => l.line === "child of features")).toBe(true);
      // The cache folder the parent's RUN wrote, under another target.
      expect(child.lines.some((l) => l.line === "run")).toBe(true);
      expect(child.image.config.config.OnBuild).toBeUndefined();
      await write("FROM scratch\nRUN --mount=type=secret,id=token,required=true true\n");
      const err = await failure(build(dir, { secret: async () => undefined }));
      expect(err.code).toBe("secret_missing");
      expect(err.message).toMatch(
        /^line 2: the build has no secret token: pass it with hangar deploy --build-secret id=token/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it("ADDs a URL with its checksum, not unpacked, and refuses a wrong checksum, a private address and a build without network", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hangar-features-add-"));
    try {
      const write = (df: string) => writeFile(join(dir, "Dockerfile"), df);
      await write(`FROM scratch\nADD --checksum=${TARBALL_SHA256} ${TARBALL} /pkg/\n`);
      const { image } = await build(dir, { network: "default" });
      const { root, release } = await scratchImageRoot(deps.layers, image);
      try {
        const st = await stat(join(root, "pkg/is-number-7.0.0.tgz"));
        expect([st.size, st.mode & 0o777]).toEqual([3730, 0o600]);
      } finally {
        await release();
      }
      await write(`FROM scratch\nADD --checksum=sha256:${"0".repeat(64)} ${TARBALL} /pkg/\n`);
      expect((await failure(build(dir, { network: "default" }))).message).toMatch(
        /^line 2: ADD https:\/\/registry.npmjs.org\/.*: the download has digest sha256:7b75.* not the --checksum/,
      );
      await write("FROM scratch\nADD http://127.0.0.1:4222/ /nats\n");
      expect((await failure(build(dir, { network: "default" }))).message).toMatch(
        /127\.0\.0\.1 is an address builds may not reach/,
      );
      await write(`FROM scratch\nADD ${TARBALL} /pkg/\n`);
      expect((await failure(build(dir, { network: "none" }))).message).toMatch(/HANGAR_BUILDER_NETWORK=none/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
