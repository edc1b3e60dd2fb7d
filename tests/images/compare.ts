// The Hangar-vs-buildah comparison of issue 14's acceptance 3: one corpus entry (a folder of
// tests/images/corpus with a Dockerfile) is built twice FROM THE SAME BASES:
// - by Hangar's builder (buildImage over openBuildDeps, as the builder's own integration tests do),
//   which makes or finds each base through its image resolution;
// - by Debian's buildah (`buildah build --isolation chroot --layers`), which pulls those same bases,
//   exported from Hangar's registry and pushed with skopeo into the test kit's docker-registry
//   (startTestRegistry). A registries.conf of the comparer's own remaps docker.io (where buildah
//   sends short names such as node:20-slim) onto that registry, so the Dockerfile is built verbatim.
// Both images are exported as OCI layouts and unpacked with umoci (as root, so owners are kept), then
// compared: the runtime config (Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts) and every file
// (path, type, mode, uid/gid, sha256 of content or symlink target), leaving out what any two builds
// of one Dockerfile write differently (see IGNORED).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  type BuildDeps,
  BuildNetworks,
  buildImage,
  openBuildDeps,
  outlineBuild,
  parseDockerfile,
} from "@hangar/builder";
import { packContext } from "@hangar/cli";
import { applyLayer, type Digest, exportImageLayout, parseImageRef } from "@hangar/oci";
import { sharedLayersDir, startNatsServer, startTestRegistry, type TestRegistry } from "@hangar/testkit";
import { connect } from "@nats-io/transport-node";

const run = promisify(execFile);
const BIG = { maxBuffer: 1 << 28 };

/** The block the comparer's build networks take their /30s from (the builder's default). */
const BUILD_NETWORK_CIDR = "172.29.0.0/16";

/**
 * The CA bundle of a host whose egress inspects TLS (this project's development machines): both
 * builders' RUN steps trust it, or npm in them cannot reach the registry.
 */
const HOST_CA_FILE = process.env.NODE_EXTRA_CA_CERTS;

/** Where buildah's RUN steps find that bundle, and the npm config naming it (npm's global npmrc). */
const BUILDAH_CA_PATH = "/run/hangar/ca-certificates.crt";
const BUILDAH_NPMRC_PATH = "/usr/local/etc/npmrc";

/**
 * The Dockerfile as buildah 1.28 takes it: `--link` (and `--link=<bool>`) taken off COPY and ADD,
 * which that buildah refuses ("COPY only supports the --chmod --chown and the --from flags").
 * `--link` lets BuildKit reuse a copy's layer when the layers under it change; the files it copies,
 * their modes and owners are the same without it, which is what the comparison reads.
 */
export function buildahDockerfile(dockerfile: string): string {
  return dockerfile.replace(
    /^(\s*(?:COPY|ADD))((?:\s+--\S+)+)/gim,
    (_all, instruction: string, flags: string) => {
      const kept = flags.replace(/\s+--link(?:=\S*)?(?=\s|$)/gi, "");
      return `${instruction}${kept}`;
    },
  );
}

/** The corpus: one folder per Dockerfile, with the app's files and SOURCE.md. */
export const CORPUS_DIR = join(import.meta.dirname, "corpus");

/** The names of the corpus entries, sorted. */
export function corpusEntries(): string[] {
  return readdirSync(CORPUS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(CORPUS_DIR, d.name, "Dockerfile")))
    .map((d) => d.name)
    .sort();
}

/**
 * Paths left out of the file comparison, and why: logs, caches and scratch space are written
 * differently by any two builds of one Dockerfile (docker's included), so issue 14 leaves them out.
 */
const IGNORED: RegExp[] = [
  /^\/var\/log(\/|$)/,
  /^\/var\/cache(\/|$)/,
  /^\/tmp(\/|$)/,
  /^\/root\/\.npm\/_logs(\/|$)/,
  /^\/home\/[^/]+\/\.npm\/_logs(\/|$)/,
];

/** The runtime config fields both builders must agree on. */
const CONFIG_FIELDS = ["Entrypoint", "Cmd", "Env", "WorkingDir", "User", "ExposedPorts"] as const;

/** One image, read back: its runtime config fields and its files (path -> facts). */
export interface ImageView {
  config: Record<string, unknown>;
  files: Map<string, string>;
}

/** One path the two images disagree on, and how. */
export interface FileDiff {
  path: string;
  /** "only in hangar: /path (facts)", "only in buildah: ...", "/path: hangar <facts> / buildah <facts>". */
  text: string;
}

/** The outcome of building one corpus entry with both builders. */
export interface Comparison {
  entry: string;
  hangarSeconds: number;
  buildahSeconds: number;
  /** "Cmd: hangar [..] buildah [..]", one per field that differs. */
  configDiffs: string[];
  fileDiffs: FileDiff[];
  /**
   * Paths that differed too between two buildah builds of the entry (without cache): what the
   * Dockerfile's own tools write differently at each build (timestamps in npm's cache index, a
   * Next.js build id), and paths named differently at each build (renamedPaths). Left out of
   * fileDiffs, and counted here.
   */
  volatilePaths: string[];
  filesCompared: number;
}

/** True when both images agree. */
export function agrees(c: Comparison): boolean {
  return c.configDiffs.length === 0 && c.fileDiffs.length === 0;
}

/** A readable account of a comparison: the verdict, then each difference (at most `limit` files). */
export function describeComparison(c: Comparison, limit = 40): string {
  const head = `${c.entry}: ${agrees(c) ? "same" : "DIFFERENT"} (${c.filesCompared} files; hangar ${c.hangarSeconds} s, buildah ${c.buildahSeconds} s)`;
  const files = c.fileDiffs.slice(0, limit);
  const more =
    c.fileDiffs.length > limit ? [`... and ${c.fileDiffs.length - limit} more file differences`] : [];
  const volatile =
    c.volatilePaths.length > 0
      ? [
          `  left out: ${c.volatilePaths.length} paths two buildah builds also write differently, e.g. ${c.volatilePaths.slice(0, 3).join(", ")}`,
        ]
      : [];
  return [
    head,
    ...c.configDiffs.map((d) => `  config ${d}`),
    ...files.map((d) => `  ${d.text}`),
    ...more,
    ...volatile,
  ].join("\n");
}

/** sha256 of a file's content, streamed. */
function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (b) => h.update(b))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

/** How many files readRootfs has open at once, over the whole tree: hashing overlaps the reads. */
const READ_CONCURRENCY = 16;

/** Runs each function given with at most `n` of them running at once. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (running >= n) await new Promise<void>((resolve) => queue.push(resolve));
    else running++;
    try {
      return await fn();
    } finally {
      // The slot passes to the next waiter, if any, without going free in between.
      const next = queue.shift();
      if (next) next();
      else running--;
    }
  };
}

/** Every path under `rootfs` (as the image sees it) with its type, mode, owner and content. */
export async function readRootfs(rootfs: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  // One limit for the whole walk: each file system call holds a slot only while it runs, never
  // while a folder below is walked, so the limit neither multiplies with depth nor deadlocks.
  const limit = limiter(READ_CONCURRENCY);
  const visit = async (path: string): Promise<void> => {
    const full = join(rootfs, path);
    const st = await limit(() => lstat(full));
    const owner = `${st.uid}:${st.gid}`;
    const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
    if (st.isSymbolicLink()) files.set(path, `symlink ${owner} -> ${await limit(() => readlink(full))}`);
    else if (st.isDirectory()) {
      files.set(path, `dir ${mode} ${owner}`);
      await walk(path);
    } else if (st.isFile()) files.set(path, `file ${mode} ${owner} ${await limit(() => fileSha256(full))}`);
    else files.set(path, `special ${(st.mode >>> 12).toString(8)} ${mode} ${owner} rdev ${st.rdev}`);
  };
  const walk = async (rel: string): Promise<void> => {
    const paths = (await limit(() => readdir(join(rootfs, rel))))
      .map((name) => `${rel}/${name}`)
      .filter((path) => !IGNORED.some((r) => r.test(path)));
    await Promise.all(paths.map(visit));
  };
  await walk("");
  return files;
}

/** An empty array, object or string says the same as an absent field. */
function normalized(value: unknown): unknown {
  if (value === null || value === "") return undefined;
  if (Array.isArray(value) && value.length === 0) return undefined;
  if (typeof value === "object" && value !== null && Object.keys(value).length === 0) return undefined;
  return value;
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * buildah (1.28, chroot isolation) creates these as empty files to bind the build's own over them in
 * a RUN, and leaves them in the layer when the base had none; docker build does not, nor Hangar.
 */
const BUILDAH_MOUNT_POINTS = new Set([
  "/etc/hostname",
  "/etc/hosts",
  "/etc/resolv.conf",
  // The comparer's own binds of the host's CA bundle (HOST_CA_FILE).
  BUILDAH_CA_PATH,
  BUILDAH_NPMRC_PATH,
]);

function isBuildahMountPoint(path: string, facts: string): boolean {
  if (path === "/run/hangar") return HOST_CA_FILE !== undefined && facts.startsWith("dir ");
  return BUILDAH_MOUNT_POINTS.has(path) && facts.startsWith("file ") && facts.endsWith(` ${EMPTY_SHA256}`);
}

/** The config field differences and the file differences of two image views. */
export function diffImages(hangar: ImageView, buildah: ImageView): { config: string[]; files: FileDiff[] } {
  const config: string[] = [];
  // Env is compared as a set: each name is there once, and its place carries no meaning. An ENV
  // that sets a variable the image has already keeps its place under BuildKit (and Hangar), while
  // buildah 1.28 moves it to the end.
  const comparable = (field: (typeof CONFIG_FIELDS)[number], value: unknown) =>
    field === "Env" && Array.isArray(value) ? [...value].sort() : value;
  for (const field of CONFIG_FIELDS) {
    const a = JSON.stringify(normalized(comparable(field, hangar.config[field])));
    const b = JSON.stringify(normalized(comparable(field, buildah.config[field])));
    if (a !== b) config.push(`${field}: hangar ${a} buildah ${b}`);
  }
  const files: FileDiff[] = [];
  for (const [path, facts] of hangar.files) {
    const other = buildah.files.get(path);
    if (other === undefined) files.push({ path, text: `only in hangar: ${path} (${facts})` });
    else if (other !== facts) files.push({ path, text: `${path}: hangar ${facts} / buildah ${other}` });
  }
  for (const [path, facts] of buildah.files) {
    if (hangar.files.has(path) || isBuildahMountPoint(path, facts)) continue;
    files.push({ path, text: `only in buildah: ${path} (${facts})` });
  }
  return { config, files: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}

/**
 * Paths left out because their names, not just their contents, change from build to build (Next.js's
 * `.next/static/<random build id>/`): where two buildah builds (`buildah`, `again`) each have entries
 * directly under a directory that the other lacks, the entries only Hangar's image or only buildah's
 * has there are left out too, with everything under them, if both sides have as many of them (one
 * random name for another).
 */
export function renamedPaths(hangar: ImageView, buildah: ImageView, again: ImageView): Set<string> {
  /** Each path of `a` that `b` lacks, under its topmost ancestor `b` lacks (that ancestor's own name). */
  const tops = (a: ImageView, b: ImageView): Map<string, string[]> => {
    const byTop = new Map<string, string[]>();
    for (const path of a.files.keys()) {
      if (b.files.has(path)) continue;
      let top = path;
      for (let up = parentOf(path); up !== "/" && up !== "" && !b.files.has(up); up = parentOf(up)) top = up;
      byTop.set(top, [...(byTop.get(top) ?? []), path]);
    }
    return byTop;
  };
  const slots = (byTop: Map<string, string[]>): Map<string, string[]> => {
    const bySlot = new Map<string, string[]>();
    for (const top of byTop.keys()) bySlot.set(parentOf(top), [...(bySlot.get(parentOf(top)) ?? []), top]);
    return bySlot;
  };
  const firstOnly = slots(tops(buildah, again));
  const secondOnly = slots(tops(again, buildah));
  const renaming = new Set([...firstOnly.keys()].filter((slot) => secondOnly.has(slot)));
  const hangarTops = tops(hangar, buildah);
  const buildahTops = tops(buildah, hangar);
  const hangarSlots = slots(hangarTops);
  const buildahSlots = slots(buildahTops);
  const out = new Set<string>();
  for (const slot of renaming) {
    const h = hangarSlots.get(slot) ?? [];
    const b = buildahSlots.get(slot) ?? [];
    if (h.length === 0 || h.length !== b.length) continue;
    for (const top of h) for (const path of hangarTops.get(top) ?? []) out.add(path);
    for (const top of b) for (const path of buildahTops.get(top) ?? []) out.add(path);
  }
  return out;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** The repository path a registry stores a base ref under (`node:20-slim` -> `library/node`). */
function baseRepository(ref: string): { repository: string; tag: string } {
  const parsed = parseImageRef(ref);
  return { repository: parsed.repository, tag: parsed.tag ?? "latest" };
}

/**
 * Builds corpus entries with Hangar and with buildah from the same bases, and compares the images.
 * One comparer keeps one buildah storage and one Hangar layer cache, so a second build of an entry
 * is a rebuild for both.
 */
export class ImageComparer {
  private readonly published = new Set<string>();

  private constructor(
    /** What the Hangar side builds with (its registry, blobs and layer cache). */
    readonly deps: BuildDeps,
    private readonly root: string,
    private readonly registry: TestRegistry,
  ) {}

  /** Starts the local registry; `root` is a scratch folder the comparer owns. */
  static async open(deps: BuildDeps, root: string): Promise<ImageComparer> {
    await mkdir(join(root, "registries.conf.d"), { recursive: true });
    return new ImageComparer(deps, root, await startTestRegistry());
  }

  /** Stops the local registry and removes buildah's storage. */
  async close(): Promise<void> {
    await this.registry.stop();
    await run("buildah", [...this.storage(), "rm", "--all"]).catch(() => undefined);
    await run("buildah", [...this.storage(), "rmi", "--all", "--force"], BIG).catch(() => undefined);
  }

  /** buildah's global flags: storage of the comparer's own, and its registries.conf alone (the
   * system's drop-ins alias node to docker.io, and would win over the aliases here). */
  private storage(): string[] {
    return [
      "--root",
      join(this.root, "buildah"),
      "--runroot",
      join(this.root, "buildah-run"),
      "--registries-conf",
      this.registriesConf(),
      "--registries-conf-dir",
      join(this.root, "registries.conf.d"),
    ];
  }

  /** The base image refs a corpus entry's Dockerfile starts its stages from. */
  baseRefs(contextDir: string): string[] {
    const outline = outlineBuild(parseDockerfile(readFileSync(join(contextDir, "Dockerfile"), "utf8")));
    const refs = outline.stages.flatMap((s) => (s.base.kind === "image" ? [s.base.ref] : []));
    return [...new Set(refs)];
  }

  /**
   * Pushes each base of an entry from Hangar's registry into the local registry, and names it in
   * buildah's registries.conf. Hangar resolves (or makes) the base first, as its FROM would.
   */
  async publishBases(contextDir: string): Promise<void> {
    for (const ref of this.baseRefs(contextDir)) {
      if (this.published.has(ref)) continue;
      const image = await this.deps.resolveImage(ref);
      const { repository, tag } = baseRepository(ref);
      const layout = await mkdtemp(join(this.root, "base-"));
      await exportImageLayout(this.deps.registry, image.digest, layout, tag);
      await this.registry.push(`oci:${layout}:${tag}`, `${repository}:${tag}`);
      await rm(layout, { recursive: true, force: true });
      this.published.add(ref);
    }
    // docker.io is where buildah sends a short name (by the system's alias table, else by the search
    // list here); the comparer remaps that whole registry onto the local one, so `FROM node:20-slim`
    // pulls the made base.
    const conf = [
      'unqualified-search-registries = ["docker.io"]',
      'short-name-mode = "permissive"',
      "[[registry]]",
      'prefix = "docker.io"',
      `location = "${this.registry.host}"`,
      "insecure = true",
      "[[registry]]",
      `location = "${this.registry.host}"`,
      "insecure = true",
    ];
    writeFileSync(this.registriesConf(), `${conf.join("\n")}\n`);
  }

  private registriesConf(): string {
    return join(this.root, "registries.conf");
  }

  /**
   * Builds a context with Hangar's builder, as `hangar deploy` sends it: packed by the CLI
   * (.dockerignore honoured) and unpacked as the builder unpacks a context; returns the image digest
   * and the seconds the build took.
   */
  async buildWithHangar(contextDir: string, tag: string): Promise<{ digest: Digest; seconds: number }> {
    const workDir = await mkdtemp(join(this.root, "work-"));
    const sentDir = await mkdtemp(join(this.root, "sent-"));
    const sent = join(sentDir, "context");
    await mkdir(sent);
    await packContext(contextDir, join(sentDir, "context.tar"));
    await applyLayer(createReadStream(join(sentDir, "context.tar")), sent, { mode: "flatten" });
    const t0 = performance.now();
    const tail: string[] = [];
    try {
      // RUN --mount=type=cache folders, per entry as the builder keeps them per app.
      const cacheMountDir = join(this.root, "cache-mounts", tag);
      const result = await buildImage(
        this.deps,
        { contextDir: sent, workDir, repository: "corpus", tag, cacheMountDir },
        {
          onOutput: (_step, { line }) => {
            tail.push(line);
            if (tail.length > 40) tail.shift();
          },
        },
      );
      return { digest: result.manifestDigest, seconds: (performance.now() - t0) / 1000 };
    } catch (err) {
      // The build's last lines say why a RUN failed.
      if (err instanceof Error)
        err.message += `\n  last lines of Hangar's build:\n    ${tail.join("\n    ")}`;
      throw err;
    } finally {
      await rm(workDir, { recursive: true, force: true });
      await rm(sentDir, { recursive: true, force: true });
    }
  }

  /**
   * buildah's binds of the host's CA bundle into RUN steps: buildah has no way to set a RUN's
   * environment alone, so npm (and yarn, pnpm) are told through npm's global npmrc instead.
   */
  private caVolumes(): string[] {
    if (!HOST_CA_FILE) return [];
    const npmrc = join(this.root, "npmrc");
    writeFileSync(npmrc, `cafile=${BUILDAH_CA_PATH}\n`);
    return [
      "--volume",
      `${HOST_CA_FILE}:${BUILDAH_CA_PATH}:ro`,
      "--volume",
      `${npmrc}:${BUILDAH_NPMRC_PATH}:ro`,
    ];
  }

  /**
   * Builds a context with buildah (chroot isolation, layer cache on); returns the seconds it took.
   * buildah 1.28 refuses `COPY --link`, so a Dockerfile using it is given to buildah without the
   * flag (see buildahDockerfile).
   */
  async buildWithBuildah(contextDir: string, tag: string, noCache = false): Promise<{ seconds: number }> {
    await this.publishBases(contextDir);
    const original = readFileSync(join(contextDir, "Dockerfile"), "utf8");
    const forBuildah = buildahDockerfile(original);
    let dockerfile = join(contextDir, "Dockerfile");
    if (forBuildah !== original) {
      dockerfile = join(this.root, `${tag}.buildah.Dockerfile`);
      writeFileSync(dockerfile, forBuildah);
    }
    const t0 = performance.now();
    await run(
      "buildah",
      [
        ...this.storage(),
        "build",
        "--isolation",
        "chroot",
        "--layers",
        ...(noCache ? ["--no-cache"] : []),
        ...this.caVolumes(),
        "--quiet",
        "-t",
        `localhost/corpus:${tag}`,
        "-f",
        dockerfile,
        contextDir,
      ],
      BIG,
    ).catch((e: Error & { stderr?: string }) => {
      throw new Error(`buildah build of ${contextDir} failed: ${e.stderr?.slice(-3000) ?? e.message}`);
    });
    return { seconds: (performance.now() - t0) / 1000 };
  }

  /** Reads an image back from an OCI layout: its config (skopeo) and its files (umoci unpack). */
  private async view(layout: string, tag: string): Promise<ImageView> {
    const { stdout } = await run("skopeo", ["inspect", "--config", `oci:${layout}:${tag}`], BIG);
    const config = (JSON.parse(stdout) as { config?: Record<string, unknown> }).config ?? {};
    // Beside the layout and named after it: the two images of an entry are read at the same time.
    const bundle = `${layout}.bundle`;
    await run("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle], BIG);
    try {
      return { config, files: await readRootfs(join(bundle, "rootfs")) };
    } finally {
      await rm(bundle, { recursive: true, force: true });
    }
  }

  /** Reads back the image buildah built as `tag`. */
  private async buildahView(out: string, tag: string): Promise<ImageView> {
    const layout = join(out, `buildah-${tag}`);
    await run(
      "buildah",
      [...this.storage(), "push", "--quiet", `localhost/corpus:${tag}`, `oci:${layout}:${tag}`],
      BIG,
    );
    return this.view(layout, tag);
  }

  /**
   * Builds one corpus entry with both builders and compares the two images. When files differ,
   * buildah builds the entry once more without its cache: a path that differs between buildah's
   * two builds as well is the Dockerfile's own doing, not a builder's, and is left out.
   * `concurrently`: the two builds run at the same time, and so do the two read-backs (CI, where
   * only the verdict counts); without it each runs alone, so that its seconds are its own (bench).
   */
  async compare(entry: string, opts: { concurrently?: boolean } = {}): Promise<Comparison> {
    const contextDir = join(CORPUS_DIR, entry);
    const tag = entry;
    const both = opts.concurrently ? bothAtOnce : oneThenOther;
    // Built at once, both builds would make and push the same bases: they are published first.
    if (opts.concurrently) await this.publishBases(contextDir);
    const [hangar, buildah] = await both(
      () => this.buildWithHangar(contextDir, tag),
      () => this.buildWithBuildah(contextDir, tag),
    );
    const out = await mkdtemp(join(this.root, `cmp-${entry}-`));
    try {
      const [a, b] = await both(
        async () => {
          await exportImageLayout(this.deps.registry, hangar.digest, join(out, "hangar"), tag);
          return this.view(join(out, "hangar"), tag);
        },
        () => this.buildahView(out, tag),
      );
      const diff = diffImages(a, b);
      let volatile = new Set<string>();
      if (diff.files.length > 0) {
        await this.buildWithBuildah(contextDir, `${tag}-again`, true);
        const rebuilt = await this.buildahView(out, `${tag}-again`);
        const again = diffImages(b, rebuilt);
        volatile = new Set([...again.files.map((d) => d.path), ...renamedPaths(a, b, rebuilt)]);
      }
      const round = (s: number) => Math.round(s * 10) / 10;
      return {
        entry,
        hangarSeconds: round(hangar.seconds),
        buildahSeconds: round(buildah.seconds),
        configDiffs: diff.config,
        fileDiffs: diff.files.filter((d) => !volatile.has(d.path)),
        volatilePaths: diff.files.filter((d) => volatile.has(d.path)).map((d) => d.path),
        filesCompared: a.files.size,
      };
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
}

/** Runs `a`, then `b`. */
async function oneThenOther<A, B>(a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  const first = await a();
  return [first, await b()];
}

/** Runs `a` and `b` at the same time; when either fails, throws once both have ended. */
async function bothAtOnce<A, B>(a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a(), b()]);
  if (ra.status === "rejected") throw ra.reason;
  if (rb.status === "rejected") throw rb.reason;
  return [ra.value, rb.value];
}

/** A comparer over a nats-server of its own (blobs, registry, layer cache) in a scratch folder. */
export async function openComparer(): Promise<{ comparer: ImageComparer; close(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "hangar-compare-"));
  const nats = await startNatsServer({ storeDir: join(root, "nats") });
  const nc = await connect({ servers: nats.url });
  const close = async (comparer?: ImageComparer) => {
    await comparer?.close();
    await nc.close();
    await nats.stop();
    await rm(root, { recursive: true, force: true });
  };
  try {
    // Under vitest, layers are unpacked into the run's shared folder (HANGAR_LAYERS_DIR, global setup).
    const { deps } = await openBuildDeps(nc, join(root, "builder"), {}, 1, sharedLayersDir());
    // RUN steps get network as in the builder service: a namespace of the build's own, NATed out,
    // trusting the host's extra CAs as the test platform's builder does (HANGAR_BUILDER_CA_FILE).
    const networks = new BuildNetworks(BUILD_NETWORK_CIDR, HOST_CA_FILE ? { caFile: HOST_CA_FILE } : {});
    const comparer = await ImageComparer.open({ ...deps, openNetwork: () => networks.open() }, root);
    return { comparer, close: () => close(comparer) };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Runs `f` with a comparer of its own, and removes everything afterwards. */
export async function withComparer<T>(f: (c: ImageComparer) => Promise<T>): Promise<T> {
  const { comparer, close } = await openComparer();
  try {
    return await f(comparer);
  } finally {
    await close();
  }
}

// `node --conditions=source --import tsx tests/images/compare.ts [entry...]` compares the entries
// named (all of the corpus without any) and prints each result; exits 1 when any differs.
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const names = process.argv.length > 2 ? process.argv.slice(2) : corpusEntries();
  const failed = await withComparer(async (c) => {
    let bad = 0;
    for (const name of names) {
      const result = await c.compare(name).catch((e: Error) => e);
      if (result instanceof Error) {
        bad++;
        process.stdout.write(`${name}: FAILED ${result.message}\n`);
      } else {
        if (!agrees(result)) bad++;
        process.stdout.write(`${describeComparison(result)}\n`);
      }
    }
    return bad;
  });
  process.exit(failed === 0 ? 0 : 1);
}
