import { randomBytes } from "node:crypto";
import {
  APP_NAME_PATTERN,
  defaultPgIdentifier,
  machineAggregateId,
  type PgCluster,
  pgClusterDecider,
  pgClusterNameProblem,
  pgIdentifierProblem,
} from "@hangar/domain";
import { DomainError } from "@hangar/eventstore";
import { isSecretName } from "@hangar/secrets";
import {
  CommandError,
  handleThenWait,
  type PgAttachReply,
  type PgAttachRequest,
  type PgClusterList,
  type PgClusterRef,
  type PgClusterView,
  type PgCreateRequest,
  type PgDetachRequest,
  type PgFailoverReply,
  type PgListRequest,
  sendCommand,
  subjects,
  type VolumeRef,
} from "@hangar/service";
import type { ClusterOps } from "./cluster-ops.js";
import { recordCreate } from "./create.js";
import type { FailoverActor } from "./failover.js";
import { AgentRefusal, type MemberClient } from "./member-client.js";
import type { ClusterMetrics } from "./metrics.js";
import { clusterView, factsOf } from "./views.js";

/** Where `list` reads clusters from: the read model in Postgres, or the manager's own fold. */
export interface ClusterLister {
  list(org: string | undefined): Promise<PgClusterView[]>;
}

/** How long an attach or detach asks again while the primary's agent answers that postgres is not up. */
const PRIMARY_RETRY_MS = 15_000;

function invalid(problem: string | undefined): void {
  if (problem) throw new DomainError(problem, "invalid_argument");
}

/** A request field that must be a string, refused (invalid_argument) otherwise. */
function text(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "")
    throw new DomainError(`${what} must be a non-empty string`, "invalid_argument");
  return value;
}

/** The manager's `cmd.postgres.*` handlers (docs/postgres.md); every refusal has a platform code. */
export class PostgresCommands {
  constructor(
    private readonly ops: ClusterOps,
    private readonly actor: FailoverActor,
    private readonly metrics: ClusterMetrics,
    private readonly lister: ClusterLister,
  ) {}

  /** Records the create, has the leader drive it, and answers the cluster once every member is ready. */
  async create(req: PgCreateRequest): Promise<PgClusterView> {
    const recorded = await recordCreate(this.ops, req);
    return this.awaitCreate(recorded.cluster);
  }

  /** Has the leader drive a recorded create (a new or a restored cluster) and answers it once ready. */
  async awaitCreate(cluster: string): Promise<PgClusterView> {
    this.actor.kickCreate(cluster);
    const c = await this.until(
      cluster,
      (x) => x.status !== "creating",
      this.ops.opts.timings.createTimeoutMs + 10_000,
    );
    if (c.status === "failed")
      throw new CommandError(
        `cluster ${c.cluster} could not be created: ${c.error ?? "unknown"}`,
        "failed_precondition",
      );
    if (c.status !== "ready")
      throw new CommandError(`cluster ${c.cluster} is ${c.status}`, "failed_precondition");
    return this.status({ cluster: c.cluster });
  }

  async list(req: PgListRequest): Promise<PgClusterList> {
    const org = req?.org === undefined || req.org === "" ? undefined : text(req.org, "org");
    return { clusters: await this.lister.list(org) };
  }

  /** The cluster with each member's live status and lag. */
  async status(req: PgClusterRef): Promise<PgClusterView> {
    const c = this.existing(req?.cluster);
    const statuses = c.status === "destroyed" ? undefined : await this.ops.statuses(c);
    return clusterView(factsOf(c), (id) => this.ops.machines.machine(c.cluster, id)?.region, statuses);
  }

  /**
   * A database and user for `app` on the primary (POST /database), with a password generated here
   * and answered once in the connection URI: it is never recorded. Asked again, the password is reset.
   */
  async attach(req: PgAttachRequest): Promise<PgAttachReply> {
    const c = this.existing(req?.cluster);
    const app = text(req.app, "app");
    if (!APP_NAME_PATTERN.test(app)) invalid(`invalid app name ${JSON.stringify(app)}`);
    const target = this.ops.apps.get(app);
    if (target?.status !== "created") throw new DomainError(`app ${app} not found`, "not_found");
    if (target.orgSlug !== c.org)
      throw new DomainError(`app ${app} is not in cluster ${c.cluster}'s org`, "failed_precondition");
    const database = req.database_name ?? defaultPgIdentifier(app);
    const user = defaultPgIdentifier(app);
    const variable = req.variable_name ?? "DATABASE_URL";
    invalid(
      typeof database === "string"
        ? pgIdentifierProblem("database", database)
        : "database_name must be a string",
    );
    if (typeof variable !== "string" || !isSecretName(variable))
      invalid(`invalid variable name ${JSON.stringify(variable)}`);
    const command = { type: "AttachDatabase" as const, app, database, user, variable };
    // Refused (already attached, cluster not ready) before the primary is asked anything.
    pgClusterDecider.decide(command, c);
    const password = randomBytes(24).toString("base64url");
    await this.onPrimary(c, (m, at, token) => m.createDatabase(at, token, { database, user, password }));
    await this.ops.record(c.cluster, command, `attach-${randomBytes(8).toString("hex")}`);
    return {
      database,
      user,
      variable,
      connection_uri: `postgres://${user}:${password}@${c.cluster}.internal:5432/${database}?sslmode=disable`,
    };
  }

  /** Drops the app's databases and users on the primary and records the detach. */
  async detach(req: PgDetachRequest): Promise<Record<string, never>> {
    const c = this.existing(req?.cluster);
    const app = text(req.app, "app");
    const command = { type: "DetachDatabase" as const, app };
    const events = pgClusterDecider.decide(command, c);
    for (const e of events) {
      if (e.type !== "PgDatabaseDetached") continue;
      const database = e.data.database ?? "";
      const user = e.data.user ?? "";
      await this.onPrimary(c, (m, at, token) => m.dropDatabase(at, token, { database, user }));
    }
    await this.ops.record(c.cluster, command, `detach-${randomBytes(8).toString("hex")}`);
    return {};
  }

  /** A planned switchover, carried out by the instance holding the failover lease. */
  async failover(req: PgClusterRef): Promise<PgFailoverReply> {
    const c = this.existing(req?.cluster);
    if (c.status !== "ready")
      throw new DomainError(`cluster ${c.cluster} is ${c.status}`, "failed_precondition");
    if (Object.keys(c.members).length < 2)
      throw new DomainError(`cluster ${c.cluster} has no replica to switch over to`, "failed_precondition");
    return this.actor.switchover(c.cluster);
  }

  /**
   * Destroys the members' machines, their volumes and the cluster's app, then records the cluster
   * destroyed. Every step is ensure-style: a destroy asked again finishes one that stopped half-way.
   */
  async destroy(req: PgClusterRef): Promise<Record<string, never>> {
    const c = this.existing(req?.cluster);
    if (c.failover)
      throw new DomainError(
        `a ${c.failover.kind} of cluster ${c.cluster} is in flight; try again`,
        "failed_precondition",
      );
    for (const m of Object.values(c.members)) {
      const machine = this.ops.machines.machine(c.cluster, m.id);
      if (machine && machine.status !== "destroyed" && machine.status !== "destroying") {
        await handleThenWait(
          this.ops.machinesHandler,
          this.ops.machines,
          machineAggregateId(c.cluster, m.id),
          { type: "DestroyMachine", force: true, nowMs: Date.now() },
          { commandId: `pg-destroy-${m.id}` },
        );
      }
    }
    for (const m of Object.values(c.members)) await this.destroyVolume(c, m.volume_id);
    const app = this.ops.apps.get(c.cluster);
    if (app?.status === "created") {
      await handleThenWait(
        this.ops.appsHandler,
        this.ops.apps,
        c.cluster,
        { type: "DestroyApp" },
        {
          commandId: `pg-destroy-app-${c.create_command_id}`,
        },
      );
    }
    await this.ops.record(c.cluster, { type: "DestroyPgCluster" }, `destroy-${c.create_command_id}`);
    this.metrics.forget(c.cluster, Object.keys(c.members));
    this.ops.forget(c.cluster);
    return {};
  }

  /** The volume destroyed once the volume service has detached it from its destroyed machine. */
  private async destroyVolume(c: PgCluster, volumeId: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await sendCommand<VolumeRef, unknown>(
          this.ops.opts.nc,
          subjects.volume.destroy,
          { app: c.cluster, volume_id: volumeId },
          60_000,
        );
        return;
      } catch (err) {
        if (err instanceof CommandError && err.code === "not_found") return;
        const attached = err instanceof CommandError && err.code === "failed_precondition";
        if (!attached || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * Calls the primary's agent; asked again for a while when the agent answers that its postgres is
   * not up just now (a busy or restarting member): the calls are idempotent.
   */
  private async onPrimary<R>(
    c: PgCluster,
    call: (client: MemberClient, address: string, token: string) => Promise<R>,
  ): Promise<R> {
    const deadline = Date.now() + PRIMARY_RETRY_MS;
    for (;;) {
      try {
        return await this.ops.onMember(c.cluster, c.primary_id, call);
      } catch (err) {
        const passing = err instanceof AgentRefusal && err.code === "unavailable";
        if (!passing || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** The cluster named by a request, refused when the name is malformed or unknown. */
  private existing(name: unknown): PgCluster {
    const cluster = text(name, "cluster");
    invalid(pgClusterNameProblem(cluster));
    const c = this.ops.cluster(cluster);
    if (!c || c.status === "destroyed")
      throw new DomainError(`postgres cluster ${cluster} not found`, "not_found");
    return c;
  }

  /** Resolves with the cluster once `done` holds (checked on every change), or refuses with timeout. */
  private until(cluster: string, done: (c: PgCluster) => boolean, timeoutMs: number): Promise<PgCluster> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const c = this.ops.cluster(cluster);
        if (c && done(c)) {
          finish();
          resolve(c);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new CommandError(`cluster ${cluster} is not ready yet; ask its status`, "timeout"));
      }, timeoutMs);
      const unsubscribe = this.ops.clusters.subscribe((change) => {
        if (change.aggregateId === cluster) check();
      });
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
      };
      check();
    });
  }
}
