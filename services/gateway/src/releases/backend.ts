import { createHash } from "node:crypto";
import { EdgeConfigSchema, ReleaseConfigSchema } from "@hangar/config";
import {
  type CommandRun,
  type Release,
  type ReleaseCommand,
  type ReleaseEdge,
  type ReleaseEvent,
  type ReleasesState,
  releaseDecider,
  releasesStream,
} from "@hangar/domain";
import {
  type AggregateStream,
  CommandHandler,
  type CommandResult,
  type EventStore,
} from "@hangar/eventstore";
import { handleThenWait } from "@hangar/service";
import type { BuildCatalog } from "../builds/catalog.js";
import { newUlid } from "../builds/ids.js";
import type { RequestContext } from "../http/backend.js";
import type { EdgeBundleStore } from "../http/edge-bundles.js";
import { ApiError } from "../http/errors.js";
import type {
  CreateReleaseInput,
  ReleaseOutcome,
  ReleaseStatusView,
  ReleasesBackend,
  ReleaseView,
} from "../http/releases-backend.js";
import type { ReleaseCatalog, ReleaseRecord } from "./catalog.js";

export interface StreamReleasesBackendDeps {
  store: EventStore;
  catalog: ReleaseCatalog;
  /** Where a release's build_id is looked up. */
  builds: BuildCatalog;
  /** True when the app exists (and was not destroyed). */
  appExists(app: string): boolean;
  /** The RELEASES stream (tests pass a prefixed one). */
  stream?: AggregateStream<ReleaseEvent>;
  /** Where an edge release's bundle must have been uploaded; without it, edge releases are refused. */
  edgeBundles?: Pick<EdgeBundleStore, "has">;
}

/** A release as the API shows it. */
export function toReleaseView(r: ReleaseRecord): ReleaseView {
  const x = r.release;
  return {
    version: x.version,
    id: x.releaseId,
    status: x.status as ReleaseStatusView,
    image: x.imageRef,
    build_id: x.buildId || null,
    description: x.description,
    reason: x.status === "failed" ? x.reason : null,
    strategy: x.strategy,
    machine_ids: x.machineIds,
    config: x.configJson ? (JSON.parse(x.configJson) as Record<string, unknown>) : null,
    created_at: new Date(r.createdAtMs).toISOString(),
    deploy: x.orchestrated,
    max_unavailable: x.maxUnavailable || null,
    wait_timeout: x.waitTimeoutMs > 0 ? x.waitTimeoutMs / 1000 : null,
    deployed_by: x.deployedBy,
    rollback_of: x.rollbackOf || null,
    rolled_back_to: x.rolledBackTo || null,
    previous_version: x.status === "pending" || !x.orchestrated ? null : x.previousVersion || null,
    release_command: commandView(x.releaseCommand),
    seed: x.seed,
    seed_command: commandView(x.seedCommand),
    edge: x.edge ? { bundle: x.edge.bundleDigest, cpu_ms: x.edge.cpuMs, memory_mb: x.edge.memoryMb } : null,
  };
}

/** A command run's view: null until it started. */
function commandView(run: CommandRun): ReleaseView["release_command"] {
  return run.machineId
    ? { machine_id: run.machineId, exit_code: run.exitCode, error: run.reason || null }
    : null;
}

/** The releases API over the RELEASES stream; reads come from the ReleaseCatalog. */
export class StreamReleasesBackend implements ReleasesBackend {
  private readonly handler: CommandHandler<ReleasesState, ReleaseCommand, ReleaseEvent>;

  constructor(private readonly deps: StreamReleasesBackendDeps) {
    this.handler = new CommandHandler(deps.store, deps.stream ?? releasesStream, releaseDecider);
  }

  private appOrThrow(app: string): void {
    if (!this.deps.appExists(app)) throw ApiError.of("not_found", `app ${app} not found`);
  }

  private record(app: string, version: number): ReleaseRecord {
    this.appOrThrow(app);
    const r = this.deps.catalog.release(app, version);
    if (!r) throw ApiError.of("not_found", `release v${version} not found in app ${app}`);
    return r;
  }

  /** The image of a release that names a build: the build must belong to the app and have succeeded. */
  private buildImage(app: string, buildId: string): string {
    const build = this.deps.builds.build(app, buildId);
    if (!build) throw ApiError.of("invalid_argument", `build_id: build ${buildId} not found in app ${app}`);
    const imageRef = build.state.result?.imageRef;
    if (build.state.status !== "succeeded" || !imageRef) {
      throw ApiError.of(
        "invalid_argument",
        `build_id: build ${buildId} is ${build.state.status}; only a succeeded build can be released`,
      );
    }
    return imageRef;
  }

  async createRelease(app: string, input: CreateReleaseInput, ctx: RequestContext): Promise<ReleaseView> {
    this.appOrThrow(app);
    const earlier = input.rollbackOf === undefined ? undefined : this.record(app, input.rollbackOf).release;
    const configJson = input.config ? JSON.stringify(input.config) : (earlier?.configJson ?? "");
    // An edge release: the bundle named, or that of the edge release rolled back to (unless an image is given).
    const edgeDigest =
      input.edgeBundle ?? (input.image || input.buildId ? undefined : earlier?.edge?.bundleDigest);
    const edge = edgeDigest ? await this.edgeRelease(app, edgeDigest, input, earlier) : undefined;
    const image = edge
      ? ""
      : input.buildId
        ? (input.image ?? this.buildImage(app, input.buildId))
        : (input.image ?? earlier?.imageRef);
    if (!edge && !image) throw ApiError.of("invalid_argument", "image: required unless build_id is given");
    if (input.deploy) {
      // The platform derives the machines from it: it must be an app config as fly.toml loads into
      // (with the [[files]] local_path contents hangar deploy read), whether sent or taken from the
      // release rolled back to (which may have been created for a client to carry out, unchecked).
      let config: unknown = input.config ?? {};
      if (!input.config && configJson) {
        try {
          config = JSON.parse(configJson);
        } catch {
          config = undefined;
        }
      }
      const parsed = ReleaseConfigSchema.safeParse(config);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const what = input.config ? "config" : `config of v${input.rollbackOf}`;
        throw ApiError.of(
          "invalid_argument",
          `${what}.${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`,
        );
      }
    }
    // A retried request with an Idempotency-Key names the release its first attempt made.
    const releaseId = ctx.operationId
      ? `op-${createHash("sha256").update(ctx.operationId).digest("hex").slice(0, 24)}`
      : newUlid();
    const res = await this.handle(
      app,
      {
        type: "CreateRelease",
        releaseId,
        imageRef: image ?? "",
        ...(edge ? { edge } : {}),
        configJson,
        ...(input.buildId ? { buildId: input.buildId } : {}),
        // A release the platform carries out rolls by default, as Fly's deploys do; an edge release
        // has no machines to roll, and takes effect at once.
        ...(input.strategy || input.deploy
          ? { strategy: input.strategy ?? (edge ? "immediate" : "rolling") }
          : {}),
        ...(input.description ? { description: input.description } : {}),
        orchestrated: input.deploy,
        ...(input.maxUnavailable ? { maxUnavailable: input.maxUnavailable } : {}),
        ...(input.waitTimeoutMs ? { waitTimeoutMs: Math.round(input.waitTimeoutMs) } : {}),
        ...(input.rollbackOf ? { rollbackOf: input.rollbackOf } : {}),
        ...(input.seed ? { seed: true } : {}),
        ...(ctx.principal ? { deployedBy: `${ctx.principal.kind} token ${ctx.principal.tokenId}` } : {}),
      },
      `create-release-${releaseId}`,
      ctx,
    );
    const created = res.events[0];
    const version = created?.type === "ReleaseCreated" ? (created.data.version ?? 0) : 0;
    return toReleaseView(this.record(app, version));
  }

  /**
   * An edge release's bundle and limits: the bundle must have been uploaded to the app (422
   * otherwise); the limits are the config's [edge] (defaults when it has none), or those of the
   * release rolled back to when no config is sent.
   */
  private async edgeRelease(
    app: string,
    bundleDigest: string,
    input: CreateReleaseInput,
    earlier: Release | undefined,
  ): Promise<ReleaseEdge> {
    if (!this.deps.edgeBundles)
      throw ApiError.of("invalid_argument", "edge_bundle: this gateway stores no edge bundles");
    if (!(await this.deps.edgeBundles.has(app, bundleDigest)))
      throw ApiError.of(
        "edge_bundle_not_found",
        `edge_bundle: ${bundleDigest} was not uploaded to app ${app} (POST /v1/apps/${app}/edge/bundles)`,
      );
    if (!input.config && earlier?.edge) return { ...earlier.edge, bundleDigest };
    const parsed = EdgeConfigSchema.safeParse(input.config?.edge ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw ApiError.of(
        "invalid_argument",
        `config.edge.${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`,
      );
    }
    return { bundleDigest, cpuMs: parsed.data.cpu_ms, memoryMb: parsed.data.memory_mb };
  }

  async endRelease(
    app: string,
    version: number,
    outcome: ReleaseOutcome,
    ctx: RequestContext,
  ): Promise<ReleaseView> {
    if (this.record(app, version).release.orchestrated)
      throw ApiError.of(
        "failed_precondition",
        `release v${version} is carried out by the platform; it ends on its own (follow it with GET .../releases/${version})`,
      );
    const command: ReleaseCommand =
      outcome.status === "succeeded"
        ? { type: "SucceedRelease", version, machineIds: outcome.machineIds }
        : { type: "FailRelease", version, reason: outcome.reason };
    await this.handle(app, command, `${command.type}-${app}-v${version}-${newUlid()}`, ctx);
    return toReleaseView(this.record(app, version));
  }

  async listReleases(app: string): Promise<ReleaseView[]> {
    this.appOrThrow(app);
    return this.deps.catalog.releasesOf(app).map(toReleaseView);
  }

  async getRelease(app: string, version: number): Promise<ReleaseView> {
    return toReleaseView(this.record(app, version));
  }

  // Runs a command on the app's releases and waits until the catalog shows it (read your own writes).
  // A refusal is a DomainError, which the HTTP layer sends with its code's status.
  private handle(
    app: string,
    command: ReleaseCommand,
    commandId: string,
    ctx: RequestContext,
  ): Promise<CommandResult<ReleasesState, ReleaseEvent>> {
    return handleThenWait(this.handler, this.deps.catalog, app, command, {
      commandId,
      correlationId: ctx.requestId,
    });
  }
}
