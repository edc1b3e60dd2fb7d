import {
  type BuildCommand,
  type BuildEvent,
  type BuildState,
  buildAggregateId,
  buildDecider,
  buildsStream,
} from "@hangar/domain";
import { type AggregateStream, CommandHandler, type EventStore } from "@hangar/eventstore";
import { type MasterKeys, sealBuildSecrets } from "@hangar/secrets";
import type { RequestContext } from "../http/backend.js";
import type {
  BuildContextUpload,
  BuildEventView,
  BuildOptions,
  BuildsBackend,
  BuildView,
} from "../http/builds-backend.js";
import { ApiError } from "../http/errors.js";
import type { BuildCatalog, BuildRecord } from "./catalog.js";
import {
  type BuildContexts,
  ContextTooLargeError,
  EmptyContextError,
  type StoredContext,
} from "./contexts.js";
import { readBuildEvents } from "./events.js";
import { newUlid } from "./ids.js";
import { toBuildEventView, toBuildView } from "./views.js";

export interface StreamBuildsBackendDeps {
  store: EventStore;
  catalog: BuildCatalog;
  contexts: BuildContexts;
  /** True when the app exists (and was not destroyed). */
  appExists(app: string): boolean;
  /** Contexts larger than this are refused with 413. */
  maxContextBytes: number;
  /** The BUILDS stream (tests pass a prefixed one). */
  stream?: AggregateStream<BuildEvent>;
  /** The platform's master keys, which seal build secrets; a build with secrets is refused without. */
  keys?: MasterKeys;
}

/** The builds API over the BUILDS stream and the build-contexts bucket; reads come from the BuildCatalog. */
export class StreamBuildsBackend implements BuildsBackend {
  private readonly stream: AggregateStream<BuildEvent>;
  private readonly handler: CommandHandler<BuildState, BuildCommand, BuildEvent>;

  constructor(private readonly deps: StreamBuildsBackendDeps) {
    this.stream = deps.stream ?? buildsStream;
    this.handler = new CommandHandler(deps.store, this.stream, buildDecider);
  }

  private appOrThrow(app: string): void {
    if (!this.deps.appExists(app)) throw ApiError.of("not_found", `app ${app} not found`);
  }

  private record(app: string, buildId: string): BuildRecord {
    this.appOrThrow(app);
    const r = this.deps.catalog.build(app, buildId);
    if (!r) throw ApiError.of("not_found", `build ${buildId} not found in app ${app}`);
    return r;
  }

  async createBuild(
    app: string,
    upload: BuildContextUpload,
    opts: BuildOptions,
    ctx: RequestContext,
  ): Promise<BuildView> {
    this.appOrThrow(app);
    const limit = this.deps.maxContextBytes;
    if (upload.length !== undefined && upload.length > limit) throw tooLarge(new ContextTooLargeError(limit));
    const keys = this.deps.keys;
    if (opts.secrets && !keys) {
      throw ApiError.of(
        "failed_precondition",
        "build secrets need the platform's master key (HANGAR_SECRETS_KEY or HANGAR_SECRETS_KEY_FILE), which this gateway lacks",
      );
    }
    const buildId = newUlid();
    let stored: StoredContext;
    try {
      stored = await this.deps.contexts.put(buildId, upload.body, limit);
    } catch (err) {
      if (err instanceof ContextTooLargeError) throw tooLarge(err);
      if (err instanceof EmptyContextError)
        throw ApiError.of("invalid_argument", err.message, { cause: err });
      throw err;
    }
    let seq: number;
    try {
      const res = await this.handler.handle(
        buildAggregateId(app, buildId),
        {
          type: "RequestBuild",
          request: {
            buildId,
            app,
            contextObject: buildId,
            contextDigest: stored.digest,
            dockerfile: opts.dockerfile ?? "",
            buildArgs: opts.buildArgs,
            target: opts.target ?? "",
            repository: app,
            tag: `deployment-${buildId}`,
            noCache: opts.noCache,
            network: opts.network,
            timeoutSeconds: opts.timeoutSeconds ?? 0,
            ...(opts.secrets && keys
              ? { buildSecrets: sealBuildSecrets(keys, app, buildId, opts.secrets) }
              : {}),
          },
        },
        { commandId: `request-build-${buildId}`, correlationId: ctx.requestId },
      );
      seq = res.seq;
    } catch (err) {
      // No build will ever read this context: do not leave it behind.
      await this.deps.contexts.delete(buildId).catch(() => {});
      throw err;
    }
    await this.deps.catalog.waitForSeq(seq);
    return toBuildView(this.record(app, buildId));
  }

  async listBuilds(app: string): Promise<BuildView[]> {
    this.appOrThrow(app);
    return this.deps.catalog.buildsOf(app).map(toBuildView);
  }

  async getBuild(app: string, buildId: string): Promise<BuildView> {
    return toBuildView(this.record(app, buildId));
  }

  async cancelBuild(app: string, buildId: string, ctx: RequestContext): Promise<BuildView> {
    const before = this.record(app, buildId);
    // The catalog's record follows the stream: read what it says before the cancel lands in it.
    const taken = before.state.status !== "requested";
    const requestedAt = before.createdAtMs;
    // Over already: the decider refuses (failed_precondition, "build already succeeded").
    const res = await this.handler.handle(
      buildAggregateId(app, buildId),
      {
        type: "FailBuild",
        failure: {
          message: "build cancelled",
          reason: "cancelled",
          durationMs: Date.now() - requestedAt,
        },
      },
      { commandId: `cancel-build-${buildId}`, correlationId: ctx.requestId },
    );
    // No builder took it, so none will discard its context; a builder that takes it meanwhile
    // finds the build failed, or its context gone, and ends it all the same.
    if (!taken) await this.deps.contexts.delete(buildId).catch(() => {});
    await this.deps.catalog.waitForSeq(res.seq);
    return toBuildView(this.record(app, buildId));
  }

  async buildEvents(
    app: string,
    buildId: string,
    opts: { follow: boolean },
    ctx: RequestContext,
  ): Promise<AsyncIterable<BuildEventView>> {
    this.record(app, buildId);
    const events = readBuildEvents(this.deps.store, this.stream, buildAggregateId(app, buildId), {
      follow: opts.follow,
      signal: ctx.signal,
    });
    return (async function* () {
      for await (const r of events) yield toBuildEventView(r.event);
    })();
  }
}

function tooLarge(err: ContextTooLargeError): ApiError {
  return ApiError.of("resource_exhausted", err.message, { cause: err });
}
