import { mkdir, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  type BuildCommand,
  type BuildEvent,
  type BuildRequest,
  type BuildState,
  buildDecider,
  buildsStream,
} from "@hangar/domain";
import { type AggregateStream, CommandHandler, type EventStore, isDomainError } from "@hangar/eventstore";
import { DEFAULT_REGISTRY_HOST, type UpstreamRegistries } from "@hangar/oci";
import { type MasterKeys, openBuildSecrets } from "@hangar/secrets";
import { AggregateView } from "@hangar/service";
import { type Context, context, type Logger, SpanStatusCode, trace, withSpan } from "@hangar/telemetry";
import type { NatsConnection } from "@nats-io/transport-node";
import { Counter, Histogram, type Registry } from "prom-client";
import { orgImageResolver } from "./app-images.js";
import { type BuildLimits, buildCgroupName, openBuildCgroup, removeLeftCgroups } from "./build-cgroup.js";
import type { OutputLine } from "./command.js";
import type { BuildContextStore } from "./context.js";
import { BuildError, isBuildError } from "./domain/errors.js";
import { type BuildDeps, buildImage, type StepReport } from "./image-build.js";
import type { BuildNetworks } from "./network/build-network.js";
import { processAlive } from "./network/egress-forwarding.js";

type BuildView = AggregateView<BuildState, BuildCommand, BuildEvent>;

export interface BuilderOptions {
  nc: NatsConnection;
  store: EventStore;
  logger: Logger;
  deps: BuildDeps;
  contexts: BuildContextStore;
  /** Where builds unpack contexts and mount root filesystems. */
  dataDir: string;
  /** The BUILDS stream (tests pass a prefixed one). */
  stream?: AggregateStream<BuildEvent>;
  registry?: Registry;
  /** This builder's id in BuildStarted; `<host name>/<pid>` by default. */
  builderId?: string;
  /** Builds run at once by this builder (default 1): a stuck one no longer holds the others back. */
  concurrency?: number;
  /** The most a build may last, in ms (HANGAR_BUILDER_BUILD_TIMEOUT); a request may ask for less. Default: no deadline. */
  buildTimeoutMs?: number;
  /**
   * Network of RUN steps (HANGAR_BUILDER_NETWORK): "default" gives each build a network namespace
   * of its own from `networks`; "none" runs every RUN without network and fails RUN --network=default.
   */
  network?: "default" | "none";
  networks?: BuildNetworks;
  /** Each build's RUN steps run in cgroups of the build's own with these limits; none without. */
  limits?: BuildLimits;
  /** Prefix of the live log subjects (default "logs.build"). */
  logSubjectPrefix?: string;
  /** The most a build context may unpack to (default MAX_CONTEXT_BYTES). */
  maxContextBytes?: number;
  /**
   * The org of an app (the APPS view; undefined for no such app). A build's FROM and COPY --from
   * may not reach another org's app repository: it fails as an unknown base image would.
   */
  orgOf(app: string): string | undefined;
  /** The master keys that open the build secrets a request carries (hangar deploy --build-secret). */
  keys?: MasterKeys;
  /** An app's secret by name: what RUN --mount=type=secret gets when the build was sent no secret of that id. */
  appSecret?(app: string, name: string): Promise<string | undefined>;
  /** FROM's resolver for a build of an app of `org` (openBuildDeps' resolveImageFor); deps.resolveImage without. */
  resolveImageFor?: (org: string) => BuildDeps["resolveImage"];
  /** The upstream registries (HANGAR_REGISTRY_UPSTREAMS): their refs are never an app's image. */
  upstreams?: UpstreamRegistries;
}

/** The most a build context may unpack to by default: 2 GiB. */
export const MAX_CONTEXT_BYTES = 2 * 2 ** 30;

/** The message BuildFailed carries for a build its builder left unfinished. */
export const RESTARTED_MESSAGE = "builder restarted during the build";

/**
 * The builder service: follows the BUILDS stream, takes requested builds (StartBuild with the
 * expected sequence: of several builders exactly one gets each build), runs them, and records
 * their steps and outcome. RUN output goes live to `logs.build.<app>.<build_id>`.
 */
export class Builder {
  readonly builderId: string;
  private readonly handler: CommandHandler<BuildState, BuildCommand, BuildEvent>;
  private readonly running = new Map<string, AbortController>();
  private readonly finished: Counter;
  private readonly stepSeconds: Histogram;
  private readonly buildSeconds: Histogram;
  private readonly cacheLookups: Counter;
  private readonly view: BuildView;
  private stopping = false;
  private pumping = false;
  private pumpAgain = false;
  private readonly idle = new Set<() => void>();
  /** The trace context of each build requested while this builder runs, so its build span joins the deploy's trace. */
  private readonly requestContexts = new Map<string, Context>();

  private constructor(private readonly opts: BuilderOptions) {
    this.builderId = opts.builderId ?? `${hostname()}/${process.pid}`;
    this.handler = new CommandHandler(opts.store, opts.stream ?? buildsStream, buildDecider);
    this.view = AggregateView.create(opts.store, opts.stream ?? buildsStream, buildDecider);
    this.view.subscribe((c) => {
      // Live changes arrive in the trace context of whoever recorded them (the gateway's request).
      if (c.live && c.state.status === "requested") {
        this.requestContexts.set(c.aggregateId, context.active());
        this.pump();
      } else this.requestContexts.delete(c.aggregateId);
      // Cancelled through the API (the gateway recorded its failure): the running build stops.
      if (c.state.status === "failed" && c.state.failure?.reason === "cancelled") {
        this.running.get(c.aggregateId)?.abort(new BuildStopped("cancelled", "build cancelled"));
      }
    });
    const registers = opts.registry ? [opts.registry] : [];
    this.finished = new Counter({
      name: "hangar_builds_total",
      help: "Builds this builder finished, by outcome",
      labelNames: ["outcome"],
      registers,
    });
    this.stepSeconds = new Histogram({
      name: "hangar_build_step_duration_seconds",
      help: "Duration of build steps, by kind (from, config, workdir, run, copy) and cache use",
      labelNames: ["kind", "cached"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    });
    this.buildSeconds = new Histogram({
      name: "hangar_build_duration_seconds",
      help: "Duration of the builds this builder finished, from its start to its outcome, by app and outcome",
      labelNames: ["app", "outcome"],
      buckets: [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    this.cacheLookups = new Counter({
      name: "hangar_build_cache_lookups_total",
      help: "Layer cache lookups of RUN, COPY, ADD and WORKDIR steps, by result",
      labelNames: ["result"],
      registers,
    });
  }

  /** Rebuilds the builds from the stream, settles what an earlier run left, then takes builds. */
  static async start(opts: BuilderOptions): Promise<Builder> {
    const builder = new Builder(opts);
    await builder.view.follow();
    await builder.view.caughtUp;
    await builder.failLeftBuilds();
    if (opts.limits) await removeLeftCgroups(hostname(), processAlive);
    builder.pump();
    return builder;
  }

  /**
   * A build is left when it is running under this host's name by a process that is gone (its pid
   * is not alive) or by this very id (a restarted container gets its old pid back). Builders on
   * other hosts are never judged: only their own restart knows.
   */
  private async failLeftBuilds(): Promise<void> {
    const host = hostname();
    for (const [id, state] of [...this.view.entries()]) {
      if (state.status !== "running") continue;
      const slash = state.builderId.lastIndexOf("/");
      const owner = state.builderId.slice(0, slash);
      const pid = Number(state.builderId.slice(slash + 1));
      if (owner !== host) continue;
      if (state.builderId !== this.builderId && processAlive(pid)) continue;
      this.opts.logger.warn({ build: id, builder: state.builderId }, "failing a build its builder left");
      await this.record(id, {
        type: "FailBuild",
        failure: { message: RESTARTED_MESSAGE, line: 0, instruction: "", output: "", durationMs: 0 },
      }).catch((err: unknown) => this.opts.logger.error({ err, build: id }, "could not fail a left build"));
      this.finished.inc({ outcome: "abandoned" });
      await this.discardContext(state.request.contextObject, this.opts.logger);
    }
  }

  /** Takes requested builds, oldest first, while there is room. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          while (!this.stopping && this.running.size < (this.opts.concurrency ?? 1)) {
            const next = this.nextRequested();
            if (next === undefined) break;
            await this.take(next);
          }
        } while (this.pumpAgain && !this.stopping);
      } finally {
        this.pumping = false;
      }
    })();
  }

  private readonly skipped = new Set<string>();

  private nextRequested(): string | undefined {
    let best: string | undefined;
    for (const [id, state] of this.view.entries()) {
      if (state.status !== "requested" || this.running.has(id) || this.skipped.has(id)) continue;
      if (best === undefined || this.view.seqOf(id) < this.view.seqOf(best)) best = id;
    }
    return best;
  }

  private async take(aggregateId: string): Promise<void> {
    // Read now: the view forgets it once it folds the BuildStarted appended below.
    const requestContext = this.requestContexts.get(aggregateId) ?? context.active();
    try {
      const r = await context.with(requestContext, () =>
        this.handler.handle(
          aggregateId,
          { type: "StartBuild", builderId: this.builderId },
          { commandId: `start-${aggregateId}-${this.builderId}` },
        ),
      );
      if (r.state.status === "absent" || r.state.builderId !== this.builderId) {
        this.skipped.add(aggregateId);
        return;
      }
      const abort = new AbortController();
      this.running.set(aggregateId, abort);
      const request = r.state.request;
      void withSpan(
        "build",
        { attributes: { "hangar.app": request.app ?? "", "hangar.build_id": request.buildId ?? "" } },
        () => this.runBuild(aggregateId, r.state, abort.signal),
        requestContext,
      ).finally(() => {
        this.running.delete(aggregateId);
        if (this.running.size === 0) for (const f of this.idle) f();
        this.pump();
      });
    } catch (err) {
      // Another builder took it (or it ended): its events will show up in the view.
      this.skipped.add(aggregateId);
      if (isDomainError(err)) return;
      this.opts.logger.error({ err, build: aggregateId }, "could not take a build; trying again shortly");
      setTimeout(() => {
        this.skipped.delete(aggregateId);
        this.pump();
      }, 2_000).unref();
    }
  }

  /**
   * The build deps of a build of `app`: a base image of another org's app answers exactly like one
   * that does not exist, so a Dockerfile learns nothing of other orgs' images. An app the view does
   * not know has no org, so every app repository is foreign to it.
   */
  private depsFor(app: string, buildId: string): BuildDeps {
    const { deps, orgOf } = this.opts;
    const org = orgOf(app) ?? "";
    const { networks, limits, upstreams } = this.opts;
    const resolve = this.opts.resolveImageFor?.(org) ?? deps.resolveImage;
    return {
      ...deps,
      ...(networks ? { openNetwork: () => networks.open() } : {}),
      ...(limits
        ? { openCgroup: () => openBuildCgroup(buildCgroupName(this.builderId, buildId), limits) }
        : {}),
      resolveImage: orgImageResolver({ org, orgOf, registry: deps.registry, upstreams, resolve }),
    };
  }

  private async runBuild(aggregateId: string, state: BuildState, signal: AbortSignal): Promise<void> {
    if (state.status === "absent") return;
    const { logger, nc } = this.opts;
    const request = state.request;
    const app = request.app ?? "";
    const buildId = request.buildId ?? "";
    const started = Date.now();
    const log = logger.child({ build: buildId, app });
    const subject = `${this.opts.logSubjectPrefix ?? "logs.build"}.${app}.${buildId}`;
    const publish = (step: number, stream: string, line: string) => {
      nc.publish(subject, JSON.stringify({ ts: new Date().toISOString(), step, stream, line }));
    };
    const workDir = join(this.opts.dataDir, "builds", buildId);
    let steps = Promise.resolve();
    log.info({ builder: this.builderId }, "build started");
    const timeoutMs = buildTimeout(request.timeoutSeconds ?? 0, this.opts.buildTimeoutMs);
    const stop = new AbortController();
    const deadline =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              stop.abort(new BuildStopped("timed_out", `build timed out after ${formatDuration(timeoutMs)}`)),
            timeoutMs,
          );
    signal.addEventListener("abort", () => stop.abort(signal.reason), { once: true });
    try {
      await rm(workDir, { recursive: true, force: true });
      await mkdir(join(workDir, "context"), { recursive: true });
      await this.opts.contexts.fetch(
        request.contextObject ?? "",
        request.contextDigest ?? undefined,
        join(workDir, "context.tar"),
        join(workDir, "context"),
        this.opts.maxContextBytes ?? MAX_CONTEXT_BYTES,
      );
      const result = await buildImage(
        this.depsFor(app, buildId),
        {
          contextDir: join(workDir, "context"),
          workDir: join(workDir, "steps"),
          dockerfile: request.dockerfile ?? "",
          buildArgs: request.buildArgs ?? {},
          target: request.target ?? "",
          repository: request.repository || app,
          tag: request.tag || buildId.toLowerCase(),
          noCache: request.noCache ?? false,
          // A builder given no way to make build networks runs every RUN without one.
          network: this.opts.networks ? (this.opts.network ?? "default") : "none",
          // RUN --mount=type=cache folders: this builder's, kept per app.
          cacheMountDir: join(this.opts.dataDir, "cache-mounts", app),
          secret: this.buildSecrets(app, buildId, request.buildSecrets),
        },
        {
          signal: stop.signal,
          onOutput: (step: number, l: OutputLine) => publish(step, l.stream, l.line),
          onStep: (s: StepReport) => {
            this.stepSeconds.observe({ kind: s.kind, cached: String(s.cached) }, s.durationMs / 1000);
            if (s.kind === "run" || s.kind === "copy" || s.kind === "workdir") {
              this.cacheLookups.inc({ result: s.cached ? "hit" : "miss" });
            }
            const note = `[${s.step}/${s.steps}] ${s.instruction}${s.cached ? " (cached)" : ""} ${s.durationMs} ms`;
            publish(s.step, "builder", note);
            log.info({ step: s.step, cached: s.cached, layer: s.layerDigest || undefined }, note);
            // Steps are recorded in order; a failure of one ends the build below.
            steps = steps.then(async () => {
              await this.record(aggregateId, {
                type: "FinishStep",
                step: {
                  stage: s.stage,
                  stageName: s.stageName,
                  step: s.step,
                  steps: s.steps,
                  line: s.line,
                  instruction: s.instruction,
                  cached: s.cached,
                  layerDigest: s.layerDigest,
                  durationMs: s.durationMs,
                  output: s.output,
                },
              });
            });
            return steps;
          },
        },
      );
      await steps;
      const repository = request.repository || app;
      await this.record(aggregateId, {
        type: "SucceedBuild",
        result: {
          imageRef: `${DEFAULT_REGISTRY_HOST}/${repository}@${result.manifestDigest}`,
          manifestDigest: result.manifestDigest,
          imageSize: result.imageSize,
          durationMs: Date.now() - started,
          cachedSteps: result.cachedSteps,
          totalSteps: result.totalSteps,
        },
      });
      this.ended(app, "succeeded", started);
      log.info(
        { digest: result.manifestDigest, cached: result.cachedSteps, steps: result.totalSteps },
        "build succeeded",
      );
    } catch (err) {
      await steps.catch(() => undefined);
      const stopped: unknown = stop.signal.aborted ? stop.signal.reason : undefined;
      const failure =
        stopped instanceof BuildStopped
          ? { message: stopped.message, reason: stopped.reason, line: 0, instruction: "", output: "" }
          : stop.signal.aborted
            ? { message: "builder stopped during the build", line: 0, instruction: "", output: "" }
            : isBuildError(err)
              ? { message: err.message, line: err.line, instruction: err.instruction, output: err.output }
              : { message: `builder error: ${(err as Error).message}`, line: 0, instruction: "", output: "" };
      trace.getActiveSpan()?.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
      if (!isBuildError(err) && !stop.signal.aborted) log.error({ err }, "build failed in the builder");
      else log.info({ line: failure.line, reason: failure.message }, "build failed");
      // A cancelled build's failure is already recorded (by the gateway): there is nothing to add.
      if ("reason" in failure && failure.reason === "cancelled") {
        this.ended(app, "cancelled", started);
        return;
      }
      this.ended(app, "failed", started);
      await this.record(aggregateId, {
        type: "FailBuild",
        failure: { ...failure, durationMs: Date.now() - started },
      }).catch((recordErr: unknown) => log.error({ err: recordErr }, "could not record the build's failure"));
    } finally {
      clearTimeout(deadline);
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      await this.discardContext(request.contextObject, log);
    }
  }

  /** Counts a build that ended in this builder and records how long it took since `startedMs`. */
  private ended(app: string, outcome: "succeeded" | "failed" | "cancelled", startedMs: number): void {
    this.finished.inc({ outcome });
    this.buildSeconds.observe({ app, outcome }, (Date.now() - startedMs) / 1000);
  }

  /**
   * A build's secrets by id: the ones sent with it (sealed in its request, opened at first use),
   * else the app's secret of that name.
   */
  private buildSecrets(
    app: string,
    buildId: string,
    sealed: BuildRequest["buildSecrets"],
  ): (id: string) => Promise<string | undefined> {
    let opened: Record<string, string> | undefined;
    return async (id) => {
      if (sealed?.values && Object.keys(sealed.values).length > 0) {
        if (!this.opts.keys) {
          throw new BuildError(
            "secret_unavailable",
            "the build was sent secrets and this builder has no master key to open them (HANGAR_SECRETS_KEY or HANGAR_SECRETS_KEY_FILE)",
          );
        }
        opened ??= openBuildSecrets(this.opts.keys, app, buildId, {
          masterKeyId: sealed.masterKeyId ?? "",
          wrappedKey: sealed.wrappedKey ?? new Uint8Array(),
          values: sealed.values,
        });
        const value = opened[id];
        if (value !== undefined) return value;
      }
      return this.opts.appSecret?.(app, id);
    };
  }

  /** The build has ended (its outcome recorded, or not recordable): its context is of no more use. */
  private async discardContext(name: string | null | undefined, log: Logger): Promise<void> {
    await this.opts.contexts
      .discard(name ?? "")
      .catch((err: unknown) => log.warn({ err, context: name }, "could not delete an ended build's context"));
  }

  private record(aggregateId: string, command: BuildCommand) {
    const suffix = command.type === "FinishStep" ? `${command.type}-${command.step.step}` : command.type;
    return this.handler.handle(aggregateId, command, {
      commandId: `${suffix}-${aggregateId}-${this.builderId}`,
    });
  }

  health() {
    return {
      ok: !this.stopping,
      builder_id: this.builderId,
      running: [...this.running.keys()],
      builds_known: this.view.size,
    };
  }

  /** Stops taking builds, ends the running ones (recorded as failed), and stops following the stream. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.running.size > 0) {
      const done = new Promise<void>((resolve) => this.idle.add(resolve));
      for (const abort of this.running.values()) abort.abort();
      await done;
    }
    await this.view.stop();
  }
}

/** Why a build was stopped from outside its steps: BuildFailed's reason and message. */
class BuildStopped extends Error {
  constructor(
    readonly reason: "cancelled" | "timed_out",
    message: string,
  ) {
    super(message);
    this.name = "BuildStopped";
  }
}

/** A build's deadline in ms: what it asked for (seconds, 0 for none), at most the builder's. */
export function buildTimeout(askedSeconds: number, maxMs: number | undefined): number | undefined {
  const asked = askedSeconds > 0 ? askedSeconds * 1000 : undefined;
  if (asked === undefined) return maxMs;
  return maxMs === undefined ? asked : Math.min(asked, maxMs);
}

/** "90 s", "30 min", "1 h 5 min": how long a deadline was, for its failure message. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const h = Math.floor(s / 3600);
  const min = Math.round((s % 3600) / 60);
  return h > 0 ? `${h} h${min > 0 ? ` ${min} min` : ""}` : `${min} min`;
}
