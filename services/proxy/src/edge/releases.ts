import { createHash } from "node:crypto";
import { edgeBundleName } from "@hangar/config";
import {
  liveEdgeRelease,
  type ReleaseCommand,
  type ReleaseEvent,
  type ReleasesState,
  releaseDecider,
  releasesStream,
} from "@hangar/domain";
import { EdgeError, type EdgeHttpRequest, type EdgeHttpResponse, type EdgeRuntimeLike } from "@hangar/edge";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView, AppSecretsError } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { ObjectStore } from "@nats-io/obj";
import type { EdgeApps } from "./serve.js";

/** Where released bundles are read from: the code of `<app>/<digest>`, undefined when not stored. */
export interface BundleSource {
  code(app: string, digest: string): Promise<string | undefined>;
}

/** Bundles in the hangar-edge-bundles Object Store bucket, as the gateway stores them (`<app>/<digest>`). */
export class ObjectStoreBundles implements BundleSource {
  constructor(private readonly bucket: Pick<ObjectStore, "getBlob">) {}

  async code(app: string, digest: string): Promise<string | undefined> {
    const bytes = await this.bucket.getBlob(edgeBundleName(app, digest));
    if (bytes === null) return undefined;
    // What runs is what was released: the object must hash to the digest the release names.
    const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (actual !== digest) throw new Error(`edge bundle ${app}/${digest} is stored with digest ${actual}`);
    return new TextDecoder().decode(bytes);
  }
}

/** The apps' deployed secrets (AppSecrets): what an edge app's `env` gets over its [env]. */
export interface EdgeSecrets {
  /** The app's deployed secrets, caught up with its last change; throws when they do not open here. */
  envFor(app: string): Promise<Record<string, string>>;
  /** Calls the listener with an app whose secrets changed; returns the unsubscribe. */
  onChange(listener: (app: string) => void): () => void;
}

export interface EdgeReleasesOptions {
  runtime: EdgeRuntimeLike;
  bundles: BundleSource;
  logger: Logger;
  /** The apps' deployed secrets, overlaid on each release's [env]; without it, [env] only. */
  secrets?: EdgeSecrets;
  /** Tests give a prefixed stream. */
  stream?: AggregateStream<ReleaseEvent>;
}

/** What an app's live edge release asks this proxy to run. */
interface Wanted {
  version: number;
  digest: string;
  cpuMs: number;
  memoryMb: number;
  vars: Record<string, string>;
  /** Equal for two releases that would run the same way. */
  key: string;
}

/** The first wait before a bundle that could not be read is read again; it doubles up to the most. */
const RELOAD_FIRST_MS = 250;
const RELOAD_MAX_MS = 30_000;

/**
 * The edge apps this proxy runs, following the RELEASES stream as the route table follows APPS and
 * MACHINES: for each app's live edge release (liveEdgeRelease) its bundle is read from the bucket
 * and deployed into the runtime (the previous code serves until the new one is compiled); an app
 * whose live release is no longer an edge one is removed. At start every live edge release is
 * deployed before the proxy serves. A request that arrives while an app's first bundle is loading
 * waits for it; a bundle that does not compile leaves the previous one serving (or, with none,
 * answers the compile error).
 */
export class EdgeReleases implements EdgeApps {
  private readonly wanted = new Map<string, Wanted>();
  /** The key each app's deployed code was made with (or failed with). */
  private readonly deployed = new Map<string, string>();
  private readonly loading = new Map<string, Promise<void>>();
  private readonly failures = new Map<string, EdgeError>();
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; delayMs: number }>();
  private readonly unsubscribeSecrets: () => void;
  /** Counts each app's secrets changes: one that comes while its secrets are being read is not missed. */
  private readonly secretsChanges = new Map<string, number>();
  private stopped = false;

  private constructor(
    private readonly view: AggregateView<ReleasesState, ReleaseCommand, ReleaseEvent>,
    private readonly opts: EdgeReleasesOptions,
  ) {
    view.subscribe((c) => this.changed(c.aggregateId, c.state, c.live));
    // A secrets change is a fresh deploy of the app's code with the new `env` (reconcile compares).
    this.unsubscribeSecrets =
      opts.secrets?.onChange((app) => {
        this.secretsChanges.set(app, (this.secretsChanges.get(app) ?? 0) + 1);
        if (this.wanted.has(app)) this.schedule(app);
      }) ?? (() => {});
  }

  /** Follows the stream and deploys every live edge release before resolving. */
  static async start(store: EventStore, opts: EdgeReleasesOptions): Promise<EdgeReleases> {
    const view = AggregateView.create(store, opts.stream ?? releasesStream, releaseDecider);
    const edge = new EdgeReleases(view, opts);
    await view.follow();
    await view.caughtUp;
    for (const app of edge.wanted.keys()) edge.schedule(app);
    await Promise.all(edge.loading.values());
    return edge;
  }

  has(app: string): boolean {
    return this.wanted.has(app);
  }

  /** The live edge release's version each edge app has here (for health and tests). */
  versions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [app, w] of this.wanted) out[app] = w.version;
    return out;
  }

  /** Resolves once the app's wanted code is loaded (or failed to be); at once when nothing is loading. */
  async settled(app: string): Promise<void> {
    await this.loading.get(app);
  }

  async dispatch(app: string, req: EdgeHttpRequest): Promise<EdgeHttpResponse> {
    const { runtime } = this.opts;
    if (runtime.current(app) === undefined) {
      // The app's first bundle is being read or compiled: its first request waits for it.
      await this.loading.get(app);
      const failure = this.failures.get(app);
      if (failure !== undefined && runtime.current(app) === undefined) throw failure;
    }
    return runtime.dispatch(app, req);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribeSecrets();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await this.view.stop();
    await Promise.all(this.loading.values());
  }

  private changed(app: string, state: ReleasesState, live: boolean): void {
    const release = liveEdgeRelease(state);
    if (release === undefined) {
      if (!this.wanted.delete(app)) return;
    } else {
      const vars = envOf(release.configJson);
      const { bundleDigest: digest, cpuMs, memoryMb } = release.edge;
      const key = JSON.stringify([digest, cpuMs, memoryMb, vars]);
      this.wanted.set(app, { version: release.version, digest, cpuMs, memoryMb, vars, key });
    }
    // While the stream is replayed at start only the last state counts: start() deploys it.
    if (live) this.schedule(app);
  }

  private schedule(app: string): void {
    if (this.stopped || this.loading.has(app)) return;
    const loaded = this.reconcile(app).finally(() => this.loading.delete(app));
    this.loading.set(app, loaded);
  }

  /** Brings the runtime to the app's wanted code, again while the wanted code changes meanwhile. */
  private async reconcile(app: string): Promise<void> {
    const { runtime, bundles, logger } = this.opts;
    for (;;) {
      const wanted = this.wanted.get(app);
      if (wanted === undefined) {
        if (this.deployed.delete(app) || runtime.current(app) !== undefined) runtime.remove(app);
        this.failures.delete(app);
        this.cancelRetry(app);
        return;
      }
      const changes = this.secretsChanges.get(app);
      let vars: Record<string, string>;
      try {
        vars = { ...wanted.vars, ...(await this.opts.secrets?.envFor(app)) };
      } catch (err) {
        if (!(err instanceof AppSecretsError)) {
          // SECRETS unreachable for now: what serves keeps serving; try again later.
          logger.error({ err, app, version: wanted.version }, "could not read an edge app's secrets");
          this.retryLater(app);
          return;
        }
        // No master key here, or one that does not open them: the app is refused, saying why, rather
        // than run without its secrets (as a host agent refuses to start its machines).
        this.refuse(app, wanted, err);
        if (this.wanted.get(app) === wanted && this.secretsChanges.get(app) === changes) return;
        continue;
      }
      // The deployed code is compared by a digest of what it was made with, secrets included.
      const key = createHash("sha256")
        .update(JSON.stringify([wanted.key, vars]))
        .digest("hex");
      if (this.deployed.get(app) === key) {
        // A change that came while they were read: read them again.
        if (this.secretsChanges.get(app) !== changes) continue;
        return;
      }
      let code: string | undefined;
      try {
        code = await bundles.code(app, wanted.digest);
        if (code === undefined) throw new Error(`edge bundle ${app}/${wanted.digest} is not in the bucket`);
      } catch (err) {
        // The bucket unreachable or the object missing: what serves now keeps serving; read again later.
        logger.error({ err, app, version: wanted.version }, "could not read an edge release's bundle");
        this.failures.set(
          app,
          new EdgeError("not_deployed", `edge app ${app}'s code could not be loaded`, 503),
        );
        this.retryLater(app);
        return;
      }
      try {
        await runtime.deploy(
          app,
          { digest: wanted.digest, code },
          { appEnv: "production", vars },
          { cpuMs: wanted.cpuMs, memoryMb: wanted.memoryMb },
        );
        this.failures.delete(app);
        logger.info({ app, version: wanted.version, digest: wanted.digest }, "edge release deployed");
      } catch (err) {
        // The same bundle would fail the same way: it is not compiled again until the release changes.
        const failure =
          err instanceof EdgeError
            ? err
            : new EdgeError("compile", `edge app ${app}: ${(err as Error).message}`);
        this.failures.set(app, failure);
        logger.error(
          { err, app, version: wanted.version },
          "edge release did not compile; the previous code serves",
        );
      }
      this.deployed.set(app, key);
      this.cancelRetry(app);
    }
  }

  /** The app's secrets do not open here: its code is taken out and its requests answer why. */
  private refuse(app: string, wanted: Wanted, err: Error): void {
    const { runtime, logger } = this.opts;
    logger.error(
      { err, app, version: wanted.version },
      "edge app's secrets do not open; its requests are refused",
    );
    if (runtime.current(app) !== undefined) runtime.remove(app);
    this.deployed.delete(app);
    this.failures.set(
      app,
      new EdgeError("not_deployed", `edge app ${app} is not run by this proxy: ${err.message}`, 503),
    );
    this.cancelRetry(app);
  }

  private retryLater(app: string): void {
    if (this.stopped) return;
    const delayMs = Math.min(RELOAD_MAX_MS, (this.retries.get(app)?.delayMs ?? RELOAD_FIRST_MS / 2) * 2);
    const timer = setTimeout(() => this.schedule(app), delayMs);
    timer.unref();
    this.retries.set(app, { timer, delayMs });
  }

  private cancelRetry(app: string): void {
    const r = this.retries.get(app);
    if (r === undefined) return;
    clearTimeout(r.timer);
    this.retries.delete(app);
  }
}

/** The release config's `env` (the app's [env]): what the code sees as `env`. */
function envOf(configJson: string): Record<string, string> {
  let env: unknown;
  try {
    env = (JSON.parse(configJson || "{}") as { env?: unknown }).env;
  } catch {
    return {};
  }
  const vars: Record<string, string> = {};
  if (env === null || typeof env !== "object") return vars;
  for (const [k, v] of Object.entries(env)) if (typeof v === "string") vars[k] = v;
  return vars;
}
