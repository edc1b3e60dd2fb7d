import { Counter, Gauge, type Registry } from "prom-client";
import type { MemberStatus } from "./member-client.js";

const ROLES = ["primary", "replica", "down"] as const;

/** The clusters' figures on the manager's /metrics, as the failover actor last saw them (docs/postgres.md). */
export class ClusterMetrics {
  private readonly lag: Gauge<"cluster" | "member">;
  private readonly commits: Gauge<"cluster" | "member">;
  private readonly connections: Gauge<"cluster" | "member">;
  private readonly role: Gauge<"cluster" | "member" | "role">;
  private readonly failovers: Counter<"cluster" | "kind">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.lag = new Gauge({
      name: "hangar_pg_replication_lag_seconds",
      help: "A replica's replay lag as its primary reports it (pg_stat_replication.replay_lag)",
      labelNames: ["cluster", "member"],
      registers,
    });
    // A gauge, not a counter: it is the member's own pg_stat_database figure, which starts over
    // when its postgres does (Prometheus' rate() handles the reset).
    this.commits = new Gauge({
      name: "hangar_pg_xact_commit_total",
      help: "Transactions committed on the member (pg_stat_database.xact_commit, summed)",
      labelNames: ["cluster", "member"],
      registers,
    });
    this.connections = new Gauge({
      name: "hangar_pg_connections",
      help: "Client connections of the member (pg_stat_database.numbackends, summed)",
      labelNames: ["cluster", "member"],
      registers,
    });
    this.role = new Gauge({
      name: "hangar_pg_member_role",
      help: "1 for the role the member reports now: primary, replica, or down (no answer, postgres down)",
      labelNames: ["cluster", "member", "role"],
      registers,
    });
    this.failovers = new Counter({
      name: "hangar_pg_failovers_total",
      help: "Changes of primary completed: failover (the primary was lost) or switchover (asked)",
      labelNames: ["cluster", "kind"],
      registers,
    });
  }

  /** Records one member's status (undefined: it did not answer). */
  observe(cluster: string, member: string, status: MemberStatus | undefined): void {
    const now = status?.pg_up ? (status.role ?? "down") : "down";
    for (const r of ROLES) this.role.set({ cluster, member, role: r }, r === now ? 1 : 0);
    if (!status?.pg_up) return;
    this.commits.set({ cluster, member }, status.xact_commit);
    this.connections.set({ cluster, member }, status.numbackends);
    if (status.role !== "primary") return;
    for (const row of status.replication) {
      if (row.replay_lag_ms !== null)
        this.lag.set({ cluster, member: row.member_id }, row.replay_lag_ms / 1000);
    }
  }

  failoverCompleted(cluster: string, kind: string): void {
    this.failovers.inc({ cluster, kind });
  }

  /** Drops a destroyed cluster's series. */
  forget(cluster: string, members: readonly string[]): void {
    for (const member of members) {
      for (const g of [this.lag, this.commits, this.connections]) g.remove({ cluster, member });
      for (const role of ROLES) this.role.remove({ cluster, member, role });
    }
  }
}
