import { lstat, mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BlobStore,
  chownToRange,
  createLayer,
  type Digest,
  type HistoryEntry,
  hostArchitecture,
  type IdRange,
  type ImageConfig,
  type ImageRegistry,
  type ImageRuntimeConfig,
  type LayerStore,
  layerLowers,
  mountIdmappedOverlay,
  mountImageRoot,
  OciError,
  type ResolvedImage,
  resolveUser,
  unmountIfMounted,
  writeImage,
} from "@hangar/oci";
import { trace, withSpan } from "@hangar/telemetry";
import { extractArchive, fileArchiveKind } from "./archive.js";
import type { BuildCgroup } from "./build-cgroup.js";
import type { OutputLine } from "./command.js";
import { baseKey, stepInputs, stepKey } from "./domain/cache-key.js";
import { cleanSource, dockerignoreExcludes, isUrl, placeSource } from "./domain/copy-rules.js";
import { parseDockerfile } from "./domain/dockerfile.js";
import {
  BuildError,
  type BuildFailureDetails,
  CopySourceError,
  DockerfileError,
  RunFailedError,
} from "./domain/errors.js";
import {
  type CopySource,
  outlineBuild,
  type PlannedStep,
  planStage,
  type StageHead,
  type StepOp,
} from "./domain/plan.js";
import { downloadUrl, UrlFetchError } from "./fetch-url.js";
import type { LayerCache, LayerRef } from "./layer-cache.js";
import type { BuildNetwork } from "./network/build-network.js";
import { type BuildNetworkPolicy, stepNetwork } from "./network/step-network.js";
import {
  copyIntoRoot,
  digestSources,
  type FoundSource,
  findSources,
  mkdirInRoot,
  type Owner,
  resolveInRoot,
} from "./rootfs-files.js";
import { BUILD_ID_RANGE, leftMountPoints, mountPoints, runInSandbox, runStepSpec } from "./run-sandbox.js";
import { prepareStepMounts } from "./step-mounts.js";

/** What a build needs from the platform. */
export interface BuildDeps {
  blobs: BlobStore;
  registry: ImageRegistry;
  layers: LayerStore;
  cache: LayerCache;
  /** Finds an image by reference: Hangar's registry, or one of the local base images. */
  resolveImage(ref: string, onProgress?: (line: string) => void): Promise<ResolvedImage>;
  /** Makes the build's network namespace, at its first RUN with network; without it, RUN steps have none. */
  openNetwork?(): Promise<BuildNetwork>;
  /** Makes the build's cgroups, at its first RUN: every RUN of the build runs within their limits. */
  openCgroup?(): Promise<BuildCgroup>;
}

/** One build's inputs. */
export interface BuildInput {
  /** The unpacked build context. */
  contextDir: string;
  /** Scratch space for this build, removed by the caller afterwards. */
  workDir: string;
  /** Path of the Dockerfile in the context ("Dockerfile" when empty). */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  repository: string;
  tag: string;
  noCache?: boolean;
  /** The platform's policy for RUN network (default "default": on, as docker build). */
  network?: BuildNetworkPolicy;
  /** The app's folder of RUN --mount=type=cache caches, kept between its builds; none without. */
  cacheMountDir?: string;
  /** A build secret by id (RUN --mount=type=secret), or undefined when the build has none. */
  secret?(id: string): Promise<string | undefined>;
}

/** A finished step, as BuildStepFinished reports it. */
export interface StepReport {
  stage: number;
  stageName: string;
  step: number;
  steps: number;
  line: number;
  instruction: string;
  cached: boolean;
  layerDigest: string;
  durationMs: number;
  /** What the step ran (RUN, COPY, WORKDIR) or only changed (config) — for metrics. */
  kind: StepOp["kind"];
  output: string;
}

export interface BuildHooks {
  onStep?(report: StepReport): void | Promise<void>;
  /** Each line a RUN writes, as it comes. */
  onOutput?(step: number, line: OutputLine): void;
  signal?: AbortSignal;
}

/** The image a build produced. */
export interface BuildResult {
  manifestDigest: Digest;
  /** Compressed size of all the image's layers. */
  imageSize: number;
  cachedSteps: number;
  totalSteps: number;
}

interface Stage {
  layers: LayerRef[];
  history: HistoryEntry[];
  config: ImageRuntimeConfig;
  platform: { architecture: string; os: string };
  key: string;
  /** The image's author (MAINTAINER, or the base image's). */
  author?: string;
}

/**
 * Builds an image from a Dockerfile in an unpacked context: each stage the target needs, step by
 * step, taking steps from the layer cache when their key is known, and writes the image to the
 * registry.
 */
/** The gzip level of the layers a build makes (see mutate). */
const BUILD_GZIP_LEVEL = 1;

export async function buildImage(
  deps: BuildDeps,
  input: BuildInput,
  hooks: BuildHooks = {},
): Promise<BuildResult> {
  return new ImageBuild(deps, input, hooks).run();
}

class ImageBuild {
  private readonly stages = new Map<number, Stage>();
  private readonly images = new Map<string, Promise<ResolvedImage>>();
  private cachedSteps = 0;
  private totalSteps = 0;
  private stepDirs = 0;
  private network: Promise<BuildNetwork> | undefined;
  private cgroup: Promise<BuildCgroup> | undefined;
  /** Host paths of the context COPY and ADD leave out (see contextLeftOut). */
  private leftOut: ReadonlySet<string> = new Set();

  constructor(
    private readonly deps: BuildDeps,
    private readonly input: BuildInput,
    private readonly hooks: BuildHooks,
  ) {}

  async run(): Promise<BuildResult> {
    try {
      return await this.build();
    } finally {
      if (this.network) await (await this.network.catch(() => undefined))?.close();
      if (this.cgroup) await (await this.cgroup.catch(() => undefined))?.close();
    }
  }

  /** The build's network namespace, made once for all its RUN steps with network. */
  private buildNetwork(at: BuildFailureDetails): Promise<BuildNetwork> {
    const open = this.deps.openNetwork;
    if (!open)
      throw new BuildError(
        "network_unavailable",
        `line ${at.line}: this builder gives RUN steps no network`,
        at,
      );
    this.network ??= open();
    return this.network;
  }

  private async build(): Promise<BuildResult> {
    const dockerfilePath = this.input.dockerfile || "Dockerfile";
    const content = await readContextFile(this.input.contextDir, dockerfilePath);
    this.leftOut = await contextLeftOut(this.input.contextDir, dockerfilePath);
    const parsed = parseDockerfile(content);
    const buildArgs = this.input.buildArgs ?? {};
    const outline = outlineBuild(parsed, {
      buildArgs,
      ...(this.input.target ? { target: this.input.target } : {}),
    });
    this.totalSteps = outline.totalSteps;
    for (const line of parsed.notes) this.hooks.onOutput?.(0, { stream: "stderr", line });
    // A base image's ONBUILD triggers are steps of the build too, numbered right after its FROM.
    let nextStep = 1;
    for (const head of outline.stages) {
      const started = Date.now();
      const base = await withSpan(`stage ${head.index} FROM`, {}, () => this.startStage(head));
      const plan = planStage(
        { ...head, firstStep: nextStep },
        { parsed, baseConfig: base.config, buildArgs },
      );
      nextStep += plan.steps.length;
      this.totalSteps += plan.triggers;
      const [from, ...steps] = plan.steps;
      if (from) await this.report(from, { cached: false, layer: null, started, output: "" });
      let stage: Stage = { ...base, config: plan.config, author: plan.author ?? base.author };
      for (const step of steps) {
        this.hooks.signal?.throwIfAborted();
        const before = stage;
        stage = await withSpan(
          `step ${step.step}`,
          {
            attributes: {
              "hangar.build.step": step.step,
              "hangar.build.instruction": step.instruction.slice(0, 200),
            },
          },
          () => this.runStep(before, step),
        );
      }
      this.stages.set(head.index, stage);
    }
    const result = this.stages.get(outline.target) as Stage;
    const config: ImageConfig = {
      created: new Date().toISOString(),
      architecture: result.platform.architecture,
      os: result.platform.os,
      ...(result.author !== undefined ? { author: result.author } : {}),
      config: result.config,
      rootfs: { type: "layers", diff_ids: result.layers.map((l) => l.diffId) },
      history: result.history,
    };
    const manifestDigest = await writeImage(this.deps.registry, {
      repository: this.input.repository,
      tag: this.input.tag,
      config,
      layers: result.layers.map((l) => ({ digest: l.digest, size: l.size })),
    });
    return {
      manifestDigest,
      imageSize: result.layers.reduce((n, l) => n + l.size, 0),
      cachedSteps: this.cachedSteps,
      totalSteps: this.totalSteps,
    };
  }

  private async startStage(head: StageHead): Promise<Stage> {
    const at = { line: head.parsed.from.line, instruction: head.parsed.from.text };
    switch (head.base.kind) {
      case "scratch":
        return {
          layers: [],
          history: [],
          config: {},
          platform: { architecture: hostArchitecture(), os: "linux" },
          key: baseKey(head.base, {}),
        };
      case "stage": {
        const stage = this.stages.get(head.base.index) as Stage;
        return { ...stage, key: baseKey(head.base, { stageKey: stage.key }) };
      }
      case "image": {
        const image = await this.image(head.base.ref, at);
        return {
          layers: imageLayers(image),
          history: image.config.history ?? [],
          config: image.config.config ?? {},
          platform: { architecture: image.config.architecture, os: image.config.os },
          key: baseKey(head.base, { digest: image.digest }),
          ...(image.config.author !== undefined ? { author: image.config.author } : {}),
        };
      }
    }
  }

  private image(ref: string, at: BuildFailureDetails): Promise<ResolvedImage> {
    let pending = this.images.get(ref);
    if (!pending) {
      // A base made at first use takes minutes: its progress goes to the build log as the parser's notes do.
      const progress = (line: string) => this.hooks.onOutput?.(0, { stream: "stderr", line });
      pending = this.deps.resolveImage(ref, progress).catch((err: unknown) => {
        if (err instanceof OciError) {
          throw new BuildError("image_unavailable", `line ${at.line}: ${err.message}`, at, { cause: err });
        }
        throw err;
      });
      this.images.set(ref, pending);
    }
    return pending;
  }

  private async runStep(stage: Stage, step: PlannedStep): Promise<Stage> {
    const started = Date.now();
    const at = { line: step.line, instruction: step.instruction };
    const op = step.op;
    if (op.kind === "config" || op.kind === "from") {
      const key = stepKey(stage.key, step.resolved);
      await this.report(step, { cached: false, layer: null, started, output: "" });
      return { ...stage, key, history: [...stage.history, history(step, null)] };
    }
    let found: FoundSource[] | undefined;
    let contentDigest: string | undefined;
    const files = op.kind === "copy" ? await this.stepFiles(op, at) : undefined;
    if (op.kind === "copy" && op.source.kind === "context") {
      found = await this.findAll(this.input.contextDir, op, "the build context", at);
      contentDigest = await digestSources(this.input.contextDir, found);
      // Layers copied before the Dockerfile and .dockerignore were left out must not be reused.
      if (this.leftOut.size > 0) contentDigest += ` leaving out ${[...this.leftOut].sort().join(" ")}`;
      if (files) contentDigest += ` ${await digestSources(files.root, files.found)}`;
    }
    const imageDigests = new Map<string, string>();
    if (op.kind === "copy" && op.source.kind === "image") {
      imageDigests.set(op.source.ref, (await this.image(op.source.ref, at)).digest);
    }
    const stageKeys = new Map([...this.stages].map(([i, s]) => [i, s.key] as const));
    const key = stepKey(
      stage.key,
      step.resolved,
      stepInputs(op, {
        contentDigest,
        stageKeys,
        imageDigests,
        network: op.kind === "run" && this.runNetwork(op, at) === "default",
        mountInputs: op.kind === "run" ? await this.mountInputs(op, at) : [],
      }),
    );
    const hit = this.input.noCache ? undefined : await this.deps.cache.get(key);
    let layer: LayerRef | null;
    let output = "";
    if (hit) {
      layer = hit.layer;
      this.cachedSteps++;
    } else {
      const dir = join(this.input.workDir, `step-${++this.stepDirs}`);
      await mkdir(dir, { recursive: true });
      try {
        if (op.kind === "run") {
          const made = await this.runCommandStep(stage, step, op, dir);
          layer = made.layer;
          output = made.output;
        } else if (op.kind === "workdir") {
          layer = await this.mutate(stage, dir, async (root) => {
            let owner: { uid: number; gid: number } | undefined;
            if (op.user !== "") {
              const u = await resolveUser(root, op.user).catch((err: unknown) => {
                if (err instanceof OciError)
                  throw new BuildError(err.code, `line ${step.line}: ${err.message}`, at);
                throw err;
              });
              owner = { uid: u.uid, gid: u.gid };
            }
            await mkdirInRoot(root, op.path, owner);
            return new Set();
          });
        } else {
          layer = await this.copyStep(stage, step, op, dir, found, files);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      await this.deps.cache.put(key, layer);
    }
    if (files) await rm(files.root, { recursive: true, force: true });
    await this.report(step, { cached: hit !== undefined, layer, started, output });
    return {
      ...stage,
      key,
      layers: layer ? [...stage.layers, layer] : stage.layers,
      history: [...stage.history, history(step, layer)],
    };
  }

  private async findAll(
    root: string,
    op: Extract<StepOp, { kind: "copy" }>,
    where: string,
    at: BuildFailureDetails,
  ): Promise<FoundSource[]> {
    const found: FoundSource[] = [];
    for (const source of op.sources) {
      if (isUrl(source)) {
        // ADD downloads http(s) URLs before the step (stepFiles); anything else is refused.
        if (op.add && /^https?:\/\//i.test(source)) continue;
        throw new CopySourceError(
          op.add
            ? `line ${at.line}: ADD of ${source} is not supported: ADD downloads http and https URLs only`
            : `line ${at.line}: COPY does not download URLs (${source}): use ADD`,
          at,
        );
      }
      found.push(...(await findSources(root, source, where, at)));
    }
    if (found.length > 1 && !op.destIsDir) {
      throw new DockerfileError(
        `line ${at.line}: the sources match ${found.length} files, so the destination must be a directory and end with a /`,
        at,
      );
    }
    return found;
  }

  /**
   * Runs `change` on the stage's root filesystem (an overlay) and makes what it changed a layer.
   * With `range`, the overlay's layers are idmapped into it, for a RUN step's user namespace: what
   * the step writes lands in the upper dir owned by range ids, and the layer records its own ids.
   * Without, the builder changes the root from the host, with the image's ids (COPY, WORKDIR).
   */
  private async mutate(
    stage: Stage,
    dir: string,
    change: (root: string) => Promise<Set<string>>,
    range?: IdRange,
  ): Promise<LayerRef | null> {
    const upper = join(dir, "upper");
    const work = join(dir, "work");
    let root = join(dir, "root");
    let rootParent: string | undefined;
    if (range) {
      // crun reaches the root filesystem as the container's root, which cannot pass the builder's
      // own folders: the root gets a folder of its own, 0700 and the range root's.
      rootParent = await mkdtemp(join(tmpdir(), "hangar-build-root-"));
      await chownToRange(rootParent, range);
      root = join(rootParent, "root");
      await mkdir(root);
      // The upper dir is the root filesystem's "/", which the container's root must own.
      for (const d of [upper, work]) await chownToRange(d, range);
      await mountIdmappedOverlay({
        lowers: await layerLowers(this.deps.layers, stage.layers),
        upper,
        work,
        target: root,
        range,
      });
    } else {
      await this.mountStage(stage.layers, upper, work, root);
    }
    let skip: Set<string>;
    try {
      skip = await change(root);
    } finally {
      await unmountIfMounted(root);
      // Not recursive: were the unmount to fail, a recursive removal would go through the mount.
      if (rootParent) {
        const parent = rootParent;
        await rmdir(root)
          .then(() => rmdir(parent))
          .catch(() => undefined);
      }
    }
    // Nothing changed, or only the sandbox's mount points did: the step needs no layer.
    if (await onlySkipped(upper, skip)) return null;
    const made = await createLayer(upper, join(dir, "layer.tar.gz"), {
      overlayUpper: true,
      // gzip's fastest level: about half the time of its default (6) on a build step's files, for
      // layers about a tenth larger (buildah keeps a build's layers uncompressed until a push).
      gzipLevel: BUILD_GZIP_LEVEL,
      skip: (p) => skip.has(p),
      ...(range ? { idRange: range } : {}),
    });
    await this.deps.blobs.putFile(made.file, made.digest);
    return { digest: made.digest, diffId: made.diffId, size: made.size };
  }

  /** A plain overlay of the layers, which only the builder reads and writes, from the host. */
  private mountStage(layers: LayerRef[], upper: string, work: string, target: string) {
    return mountImageRoot(this.deps.layers, layers, { upper, work, target, options: ["nosuid", "nodev"] });
  }

  private async runCommandStep(
    stage: Stage,
    step: PlannedStep,
    op: Extract<StepOp, { kind: "run" }>,
    dir: string,
  ): Promise<{ layer: LayerRef | null; output: string }> {
    const at = { line: step.line, instruction: step.instruction };
    let output = "";
    const range = BUILD_ID_RANGE;
    const layer = await this.mutate(
      stage,
      dir,
      async (root) => {
        // Made from the host for the container's root: owned by the range's root, not the host's.
        await mkdirInRoot(root, op.cwd, { uid: range.hostId, gid: range.hostId });
        let user = { uid: 0, gid: 0 };
        if (op.user !== "") {
          try {
            user = await resolveUser(root, op.user);
          } catch (err) {
            if (err instanceof OciError)
              throw new BuildError(err.code, `line ${step.line}: ${err.message}`, at);
            throw err;
          }
        }
        const network = this.runNetwork(op, at);
        const mounts = await prepareStepMounts(op.mounts, op.script, this.mountContext(range), at);
        try {
          const spec = await runStepSpec({
            rootfs: root,
            argv: op.argv,
            env: [...op.env, ...mounts.env],
            cwd: op.cwd,
            user,
            range,
            network,
            ...(network === "default" ? { buildNetwork: await this.buildNetwork(at) } : {}),
            binds: mounts.binds,
          });
          const existed = new Map<string, boolean>();
          for (const p of mountPoints(spec)) existed.set(p, await exists(join(root, p)));
          // What a step prints of its secrets stays out of the log and the BUILDS stream.
          const redact = (text: string) =>
            mounts.secretValues.reduce((t, v) => (v === "" ? t : t.split(v).join("[secret]")), text);
          const open = this.deps.openCgroup;
          if (open) this.cgroup ??= open();
          const outcome = await runInSandbox(spec, {
            ...(this.cgroup ? { cgroupProcs: (await this.cgroup).procs } : {}),
            onLine: (l) => this.hooks.onOutput?.(step.step, { ...l, line: redact(l.line) }),
            ...(this.hooks.signal ? { signal: this.hooks.signal } : {}),
          });
          output = redact(outcome.output);
          if (outcome.exitCode !== 0) {
            throw new RunFailedError(
              `line ${step.line}: ${step.instruction} failed with exit code ${outcome.exitCode}`,
              { ...at, output, exitCode: outcome.exitCode },
            );
          }
          return leftMountPoints(root, existed);
        } finally {
          await mounts.release();
        }
      },
      range,
    );
    return { layer, output };
  }

  /**
   * The files a COPY or ADD makes rather than finds: its heredocs (mode 0644, as BuildKit writes
   * them) and ADD's http(s) downloads (0600, mtime from Last-Modified, as Docker keeps them), each
   * under a folder of its own so names never collide. Undefined when the step has neither.
   */
  private async stepFiles(
    op: Extract<StepOp, { kind: "copy" }>,
    at: BuildFailureDetails,
  ): Promise<{ root: string; found: FoundSource[] } | undefined> {
    const urls = op.add ? op.sources.filter((s) => /^https?:\/\//i.test(s)) : [];
    if (op.inline.length === 0 && urls.length === 0) return undefined;
    if (urls.length > 0 && (this.input.network ?? "default") === "none") {
      throw new BuildError(
        "network_forbidden",
        `line ${at.line}: ADD ${urls[0]} is refused: this platform runs builds without network (HANGAR_BUILDER_NETWORK=none); download the file into the build context and COPY it`,
        at,
      );
    }
    const root = join(this.input.workDir, `files-${++this.stepDirs}`);
    const found: FoundSource[] = [];
    for (const doc of op.inline) {
      const path = `${found.length}/${cleanSource(doc.name, at)}`;
      await mkdir(join(root, String(found.length)), { recursive: true });
      await writeFile(join(root, path), doc.content, { mode: 0o644 });
      found.push({ path, isDir: false });
    }
    for (const url of urls) {
      const name =
        decodeURIComponent(new URL(url).pathname.split("/").filter(Boolean).at(-1) ?? "") || "index.html";
      const path = `${found.length}/${cleanSource(name, at)}`;
      await mkdir(join(root, String(found.length)), { recursive: true });
      await downloadUrl(url, join(root, path), {
        ...(op.checksum !== undefined ? { checksum: op.checksum } : {}),
        ...(this.hooks.signal ? { signal: this.hooks.signal } : {}),
      }).catch((err: unknown) => {
        if (err instanceof UrlFetchError)
          throw new CopySourceError(`line ${at.line}: ADD ${err.message}`, at);
        throw err;
      });
      found.push({ path, isDir: false });
    }
    return { root, found };
  }

  /** What a RUN's bind mounts read, for its cache key: a context digest, a stage key, an image digest. */
  private async mountInputs(
    op: Extract<StepOp, { kind: "run" }>,
    at: BuildFailureDetails,
  ): Promise<string[]> {
    const inputs: string[] = [];
    for (const m of op.mounts) {
      if (m.type !== "bind") continue;
      if (m.from.kind === "context") {
        const found = await findSources(this.input.contextDir, m.source || ".", "the build context", at);
        inputs.push(`bind ${m.target} context ${await digestSources(this.input.contextDir, found)}`);
      } else if (m.from.kind === "stage") {
        inputs.push(`bind ${m.target} stage ${(this.stages.get(m.from.index) as Stage).key}`);
      } else {
        inputs.push(`bind ${m.target} image ${(await this.image(m.from.ref, at)).digest}`);
      }
    }
    return inputs;
  }

  /** Where a RUN's mounts come from: the build's context, stages, images, caches and secrets. */
  private mountContext(range: typeof BUILD_ID_RANGE) {
    return {
      range,
      cacheDir: this.input.cacheMountDir,
      contextDir: this.input.contextDir,
      lowersOf: async (source: Exclude<CopySource, { kind: "context" }>) =>
        layerLowers(
          this.deps.layers,
          source.kind === "stage"
            ? (this.stages.get(source.index) as Stage).layers
            : imageLayers(await this.image(source.ref, {})),
        ),
      secret: async (id: string) => this.input.secret?.(id),
    };
  }

  /** The network a RUN step gets: what it asked within the platform's policy. */
  private runNetwork(op: Extract<StepOp, { kind: "run" }>, at: BuildFailureDetails): "default" | "none" {
    return stepNetwork(op.network, this.input.network ?? "default", at);
  }

  private async copyStep(
    stage: Stage,
    step: PlannedStep,
    op: Extract<StepOp, { kind: "copy" }>,
    dir: string,
    contextSources: FoundSource[] | undefined,
    files: { root: string; found: FoundSource[] } | undefined,
  ): Promise<LayerRef | null> {
    const at = { line: step.line, instruction: step.instruction };
    const source = await this.sourceRoot(op.source, join(dir, "source"), at);
    try {
      const found = contextSources ?? (await this.findAll(source.root, op, source.where, at));
      return await this.mutate(stage, dir, async (root) => {
        let owner: Owner = op.source.kind === "context" ? { uid: 0, gid: 0 } : "preserve";
        if (op.chown !== undefined) {
          try {
            owner = await resolveUser(root, op.chown);
          } catch (err) {
            if (err instanceof OciError)
              throw new BuildError(err.code, `line ${step.line}: --chown: ${err.message}`, at);
            throw err;
          }
        }
        const destHost = await resolveInRoot(root, op.dest);
        const destExistsAsDir = (await stat(destHost).catch(() => undefined))?.isDirectory() ?? false;
        let archives = 0;
        for (const f of found) {
          const srcHost = await resolveInRoot(source.root, f.path);
          if (op.add && !f.isDir && (await fileArchiveKind(srcHost)) !== undefined) {
            // ADD unpacks a local archive into the destination directory.
            const unpacked = join(dir, `archive-${++archives}`);
            await mkdir(unpacked);
            await extractArchive(srcHost, unpacked).catch((err: unknown) => {
              throw new CopySourceError(`line ${step.line}: ${(err as Error).message}`, at);
            });
            await copyIntoRoot(
              root,
              unpacked,
              op.dest,
              op.chown !== undefined ? owner : "preserve",
              op.chmod,
            );
            continue;
          }
          const placement = placeSource(f, op.dest, op.destIsDir, destExistsAsDir);
          await copyIntoRoot(
            root,
            srcHost,
            placement.to,
            owner,
            op.chmod,
            op.source.kind === "context" ? this.leftOut : undefined,
          );
        }
        // Heredoc files and downloads: a file each, never unpacked (as Docker treats remote archives).
        for (const f of files?.found ?? []) {
          const placement = placeSource(f, op.dest, op.destIsDir, destExistsAsDir);
          await copyIntoRoot(root, join(files?.root ?? "", f.path), placement.to, owner, op.chmod);
        }
        return new Set();
      });
    } finally {
      await source.release();
    }
  }

  /** The root filesystem COPY reads from: the context, or a read view of a stage or an image. */
  private async sourceRoot(
    source: CopySource,
    dir: string,
    at: BuildFailureDetails,
  ): Promise<{ root: string; where: string; release(): Promise<void> }> {
    if (source.kind === "context") {
      return { root: this.input.contextDir, where: "the build context", release: async () => {} };
    }
    const layers =
      source.kind === "stage"
        ? (this.stages.get(source.index) as Stage).layers
        : imageLayers(await this.image(source.ref, at));
    const root = join(dir, "rootfs");
    const mount = await this.mountStage(layers, join(dir, "upper"), join(dir, "work"), root);
    const where = source.kind === "stage" ? `stage ${source.index}` : `image ${source.ref}`;
    return { root, where, release: () => mount.unmount() };
  }

  private async report(
    step: PlannedStep,
    r: { cached: boolean; layer: LayerRef | null; started: number; output: string },
  ): Promise<void> {
    // Inside the step's span (FROM steps: the stage's).
    trace.getActiveSpan()?.setAttribute("hangar.build.cached", r.cached);
    await this.hooks.onStep?.({
      stage: step.stage,
      stageName: step.stageName,
      step: step.step,
      steps: this.totalSteps,
      line: step.line,
      instruction: step.instruction,
      cached: r.cached,
      layerDigest: r.layer?.digest ?? "",
      durationMs: Date.now() - r.started,
      kind: step.op.kind,
      output: r.output,
    });
  }
}

function imageLayers(image: ResolvedImage): LayerRef[] {
  const diffIds = image.config.rootfs.diff_ids;
  if (diffIds.length !== image.manifest.layers.length) {
    throw new BuildError(
      "image_invalid",
      `image ${image.repository}@${image.digest} lists ${image.manifest.layers.length} layers but ${diffIds.length} diff ids`,
    );
  }
  return image.manifest.layers.map((l, i) => ({
    digest: l.digest,
    diffId: diffIds[i] as Digest,
    size: l.size,
  }));
}

function history(step: PlannedStep, layer: LayerRef | null): HistoryEntry {
  return {
    created: new Date().toISOString(),
    created_by: step.instruction,
    comment: "hangar-builder",
    ...(layer === null ? { empty_layer: true } : {}),
  };
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined)) !== undefined;
}

/** True when the upper dir holds nothing but the skipped paths and the directories leading to them. */
async function onlySkipped(upper: string, skip: Set<string>, rel = ""): Promise<boolean> {
  for (const name of await readdir(join(upper, rel))) {
    const p = rel === "" ? name : `${rel}/${name}`;
    if (skip.has(p)) continue;
    const prefix = `${p}/`;
    if (![...skip].some((s) => s.startsWith(prefix))) return false;
    if (!(await onlySkipped(upper, skip, p))) return false;
  }
  return true;
}

/**
 * The Dockerfile and .dockerignore when .dockerignore names them: the CLI sends both whatever it
 * says (the builder needs them, as Docker's daemon does), and COPY and ADD leave them out then, as
 * docker build and buildah do. Everything else .dockerignore names the CLI did not send.
 */
async function contextLeftOut(contextDir: string, dockerfilePath: string): Promise<Set<string>> {
  const ignore = await readFile(join(contextDir, ".dockerignore"), "utf8").catch(() => "");
  const named = [cleanSource(dockerfilePath), ".dockerignore"].filter((p) => dockerignoreExcludes(ignore, p));
  return new Set(named.map((p) => join(contextDir, p)));
}

/** Reads a file of the context by its path there, never following a link out of it. */
async function readContextFile(contextDir: string, path: string): Promise<string> {
  const host = await resolveInRoot(contextDir, path);
  const st = await stat(host).catch(() => undefined);
  if (!st?.isFile()) {
    throw new DockerfileError(`${path} is not in the build context: add it, or name the Dockerfile to use`);
  }
  return readFile(host, "utf8");
}
