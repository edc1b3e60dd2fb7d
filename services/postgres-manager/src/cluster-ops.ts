import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appSecretsId,
  appsStream,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineDecider,
  machinesStream,
  type PgCluster,
  type PgClusterCommand,
  type PgClusterEvent,
  type PgClusterState,
  pgClusterAggregateId,
  pgClusterDecider,
  pgclustersStream,
  type SecretsCommand,
  type SecretsEvent,
  type SecretsState,
  secretsDecider,
  secretsStream,
} from "@hangar/domain";
import { CommandHandler, type EventStore } from "@hangar/eventstore";
import type { MasterKeys } from "@hangar/secrets";
import { AggregateView, CommandError, handleThenWait, MachinesView, OrgSecrets } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection } from "@nats-io/transport-node";
import { type MemberAddress, MemberClient, type MemberStatus } from "./member-client.js";

/** The secret holding the member agents' bearer token (docs/postgres.md). */
export const AGENT_TOKEN_SECRET = "HANGAR_PG_AGENT_TOKEN";

/** The manager's timing settings, in ms. */
export interface ManagerTimings {
  checkMs: number;
  primaryLostMs: number;
  fenceWaitMs: number;
  createTimeoutMs: number;
}

export interface ClusterOpsOptions {
  nc: NatsConnection;
  store: EventStore;
  logger: Logger;
  keys: MasterKeys | undefined;
  image: string;
  agentPort: number;
  timings: ManagerTimings;
}

/** Where the manager and the members reach one member now. */
export interface MemberPlace {
  id: string;
  /** The machine's host-local IPv4: the manager reaches the control API there. */
  control: string;
  /** Its 6PN address, which its peers use (the host-local one where it has none). */
  peer: string;
  started: boolean;
}

/**
 * What the create, the failover actor and the commands share: the views the manager folds (its
 * clusters, the apps, machines and app secrets), the handlers it appends with, and the member
 * agents' control API with each cluster's token.
 */
export class ClusterOps {
  readonly clusters: AggregateView<PgClusterState, PgClusterCommand, PgClusterEvent>;
  readonly apps: AggregateView<AppState, AppCommand, AppEvent>;
  readonly machines: MachinesView;
  readonly secrets: AggregateView<SecretsState, SecretsCommand, SecretsEvent>;
  readonly clusterHandler: CommandHandler<PgClusterState, PgClusterCommand, PgClusterEvent>;
  readonly appsHandler: CommandHandler<AppState, AppCommand, AppEvent>;
  readonly machinesHandler: CommandHandler<MachineState, MachineCommand, MachineEvent>;
  readonly secretsHandler: CommandHandler<SecretsState, SecretsCommand, SecretsEvent>;
  readonly members: MemberClient;
  private readonly tokens = new Map<string, string>();

  private constructor(
    readonly opts: ClusterOpsOptions,
    private readonly openSecrets: OrgSecrets,
    views: {
      clusters: ClusterOps["clusters"];
      apps: ClusterOps["apps"];
      machines: MachinesView;
      secrets: ClusterOps["secrets"];
    },
  ) {
    this.clusters = views.clusters;
    this.apps = views.apps;
    this.machines = views.machines;
    this.secrets = views.secrets;
    const { store } = opts;
    this.clusterHandler = new CommandHandler(store, pgclustersStream, pgClusterDecider);
    this.appsHandler = new CommandHandler(store, appsStream, appDecider);
    this.machinesHandler = new CommandHandler(store, machinesStream, machineDecider);
    this.secretsHandler = new CommandHandler(store, secretsStream, secretsDecider);
    this.members = new MemberClient(opts.agentPort);
  }

  /** Follows the streams the manager reads and resolves once each has caught up. */
  static async start(opts: ClusterOpsOptions): Promise<ClusterOps> {
    const { store } = opts;
    const appSecrets = `${secretsStream.subjectPrefix}.app.>`;
    const [clusters, apps, machines, secrets, openSecrets] = await Promise.all([
      AggregateView.start(store, pgclustersStream, pgClusterDecider),
      AggregateView.start(store, appsStream, appDecider),
      MachinesView.start(store),
      AggregateView.start(store, secretsStream, secretsDecider, { filter: appSecrets }),
      OrgSecrets.start(store, opts.keys, { kind: "app" }),
    ]);
    await Promise.all([clusters.caughtUp, apps.caughtUp, secrets.caughtUp]);
    return new ClusterOps(opts, openSecrets, { clusters, apps, machines, secrets });
  }

  async stop(): Promise<void> {
    await Promise.all([
      this.clusters.stop(),
      this.apps.stop(),
      this.machines.stop(),
      this.secrets.stop(),
      this.openSecrets.stop(),
    ]);
  }

  /** The cluster as the manager has folded it (destroyed ones included); undefined when none. */
  cluster(name: string): PgCluster | undefined {
    return this.clusters.get(pgClusterAggregateId(name)) ?? undefined;
  }

  /** Every cluster the manager knows. */
  allClusters(): PgCluster[] {
    const out: PgCluster[] = [];
    for (const [, state] of this.clusters.entries()) if (state) out.push(state);
    return out;
  }

  /** Records a step of a cluster and waits until the view shows it. */
  async record(cluster: string, command: PgClusterCommand, commandId: string): Promise<PgCluster> {
    const res = await handleThenWait(
      this.clusterHandler,
      this.clusters,
      pgClusterAggregateId(cluster),
      command,
      { commandId },
    );
    const state = res.state;
    if (!state) throw new CommandError(`cluster ${cluster} is not recorded`, "internal");
    return state;
  }

  /** The app secrets' state of the cluster app (sealed). */
  appSecrets(cluster: string): SecretsState | undefined {
    return this.secrets.get(appSecretsId(cluster));
  }

  /** The cluster's member agent token, opened once and kept in memory (never logged). */
  async agentToken(cluster: string): Promise<string> {
    const known = this.tokens.get(cluster);
    if (known) return known;
    const token = await this.openSecrets.read(cluster, AGENT_TOKEN_SECRET);
    if (!token)
      throw new CommandError(`cluster ${cluster} has no ${AGENT_TOKEN_SECRET} secret`, "failed_precondition");
    this.tokens.set(cluster, token);
    return token;
  }

  /** Where a member's machine is now (undefined before it is created). */
  place(cluster: string, memberId: string): MemberPlace | undefined {
    const m = this.machines.machine(cluster, memberId);
    if (!m) return undefined;
    return {
      id: memberId,
      control: m.privateIp,
      peer: m.privateIpv6 || m.privateIp,
      started: m.status === "started" && m.privateIp !== "",
    };
  }

  /** The members as /configure takes them, in member order; those not started yet are left out. */
  addresses(c: PgCluster, only?: readonly string[]): MemberAddress[] {
    return orderedMembers(c)
      .filter((m) => !only || only.includes(m.id))
      .map((m) => this.place(c.cluster, m.id))
      .filter((p): p is MemberPlace => p?.started === true)
      .map((p) => ({ id: p.id, address: p.peer }));
  }

  /** A member's status, or undefined when its machine has no address yet or the agent does not answer. */
  async statusOf(cluster: string, memberId: string): Promise<MemberStatus | undefined> {
    const place = this.place(cluster, memberId);
    if (!place?.started) return undefined;
    const token = await this.agentToken(cluster).catch(() => undefined);
    if (!token) return undefined;
    return this.members.statusOrUndefined(place.control, token);
  }

  /** Every member's status, asked at once. */
  async statuses(c: PgCluster): Promise<Map<string, MemberStatus | undefined>> {
    const ids = orderedMembers(c).map((m) => m.id);
    const got = await Promise.all(ids.map((id) => this.statusOf(c.cluster, id)));
    return new Map(ids.map((id, i) => [id, got[i]]));
  }

  /** Calls the member's control API with the cluster's token; refused `unavailable` before it has an address. */
  async onMember<R>(
    cluster: string,
    memberId: string,
    call: (client: MemberClient, address: string, token: string) => Promise<R>,
  ): Promise<R> {
    const place = this.place(cluster, memberId);
    if (!place?.started)
      throw new CommandError(`member ${memberId} of cluster ${cluster} is not started`, "unavailable");
    return call(this.members, place.control, await this.agentToken(cluster));
  }

  /** Forgets what the manager kept of a destroyed cluster. */
  forget(cluster: string): void {
    this.tokens.delete(cluster);
  }
}

/** A cluster's members by index. */
export function orderedMembers(c: PgCluster): PgCluster["members"][string][] {
  return Object.values(c.members).sort((a, b) => a.index - b.index);
}
