import { type DomainErrorCode, deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { defaultPgIdentifier, pgClusterNameProblem, pgIdentifierProblem } from "./names.js";
import { type PgClusterCommand, type PgClusterEvent, pgClusterDecider } from "./pgcluster.js";

const spec = deciderSpec(pgClusterDecider);
const code = (c: DomainErrorCode) => (e: unknown) => isDomainError(e, c);
const cluster = "db1";

const create: PgClusterCommand = {
  type: "CreatePgCluster",
  cluster,
  org: "o",
  region: "local",
  vmSize: "shared-cpu-1x",
  cpus: 1,
  memoryMb: 256,
  volumeSizeGb: 1,
  initialSize: 3,
  image: "hangar/postgres-member:15",
  requestedAtMs: 1_000,
  commandId: "c1",
};
const requested: PgClusterEvent = {
  type: "PgClusterCreateRequested",
  data: {
    cluster,
    org: "o",
    region: "local",
    vmSize: "shared-cpu-1x",
    cpus: 1,
    memoryMb: 256,
    volumeSizeGb: 1,
    initialSize: 3,
    image: "hangar/postgres-member:15",
    requestedAtMs: 1_000,
    commandId: "c1",
  },
};
const added = (i: number): PgClusterEvent => ({
  type: "PgMemberAdded",
  data: { cluster, memberId: `m${i}`, index: i, volumeId: `vol_${i}`, hostId: "h1" },
});
const memberReady = (i: number, role: "primary" | "replica"): PgClusterEvent => ({
  type: "PgMemberReady",
  data: { cluster, memberId: `m${i}`, role, timeline: 1 },
});
const clusterReady: PgClusterEvent = { type: "PgClusterReady", data: { cluster, primaryId: "m0" } };
const members = [added(0), added(1), added(2)];
const ready = [
  requested,
  ...members,
  memberReady(0, "primary"),
  memberReady(1, "replica"),
  memberReady(2, "replica"),
  clusterReady,
];
const started: PgClusterEvent = {
  type: "PgFailoverStarted",
  data: {
    cluster,
    failoverId: "f1",
    kind: "failover",
    oldPrimaryId: "m0",
    reason: "primary gone",
    startedAtMs: 5_000,
  },
};
const chosen: PgClusterEvent = {
  type: "PgCandidateChosen",
  data: { cluster, failoverId: "f1", memberId: "m1", lsn: "0/3000148", lsnBytes: 50331976 },
};
const promoted: PgClusterEvent = {
  type: "PgMemberPromoted",
  data: { cluster, failoverId: "f1", memberId: "m1", timeline: 2 },
};
const repointed: PgClusterEvent = {
  type: "PgMemberRepointed",
  data: { cluster, failoverId: "f1", memberId: "m2", primaryId: "m1" },
};
const destroyed: PgClusterEvent = { type: "PgClusterDestroyed", data: { cluster } };

describe("postgres cluster names", () => {
  it("takes app names for clusters and lowercase identifiers for databases and users", () => {
    expect(pgClusterNameProblem("my-db")).toBeUndefined();
    for (const bad of ["My-db", "-db", "db-", "", "a".repeat(64), "db.x", "db_1"])
      expect(pgClusterNameProblem(bad), bad).toBeDefined();
    expect(pgIdentifierProblem("database", "my_app")).toBeUndefined();
    expect(pgIdentifierProblem("user", `_${"a".repeat(62)}`)).toBeUndefined();
    for (const bad of ["my-app", "1app", "App", "", "a".repeat(64), 'x"; drop', "a b", "pg_app"])
      expect(pgIdentifierProblem("user", bad), bad).toBeDefined();
  });

  it("derives a valid default database and user name from any app name", () => {
    expect(defaultPgIdentifier("my-app")).toBe("my_app");
    expect(defaultPgIdentifier("1app")).toBe("_1app");
    // Postgres reserves role names starting with pg_.
    expect(defaultPgIdentifier("pg-app")).toBe("_pg_app");
    expect(pgIdentifierProblem("database", defaultPgIdentifier(`9${"a".repeat(62)}`))).toBeUndefined();
  });
});

describe("postgres cluster decider: create", () => {
  it("records the create, its members with their indexes, then ready", () => {
    spec.given([]).when(create).then([requested]);
    spec
      .given([requested])
      .when({ type: "AddMember", memberId: "m0", volumeId: "vol_0", hostId: "h1" })
      .then([added(0)]);
    spec
      .given([requested, added(0)])
      .when({ type: "AddMember", memberId: "m1", volumeId: "vol_1", hostId: "h1" })
      .then([added(1)]);
    spec
      .given([requested, ...members])
      .when({ type: "MarkMemberReady", memberId: "m0", role: "primary", timeline: 1 })
      .then([memberReady(0, "primary")]);
    spec.given(ready.slice(0, -1)).when({ type: "MarkClusterReady", primaryId: "m0" }).then([clusterReady]);
    expect(fold(pgClusterDecider, ready)).toMatchObject({
      cluster,
      status: "ready",
      primary_id: "m0",
      timeline: 1,
      created_at: new Date(1_000).toISOString(),
      failover: null,
      members: {
        m0: {
          id: "m0",
          index: 0,
          volume_id: "vol_0",
          host_id: "h1",
          role: "primary",
          ready: true,
          fenced: false,
        },
        m2: { index: 2, role: "replica", ready: true },
      },
    });
  });

  it("answers repeated steps with nothing", () => {
    spec.given(ready).when(create).then([]);
    spec.given(ready).when({ type: "AddMember", memberId: "m1", volumeId: "vol_1", hostId: "h1" }).then([]);
    spec
      .given(ready)
      .when({ type: "MarkMemberReady", memberId: "m1", role: "replica", timeline: 1 })
      .then([]);
    spec.given(ready).when({ type: "MarkClusterReady", primaryId: "m0" }).then([]);
  });

  it("refuses bad names, sizes, another create of the name and a member re-added elsewhere", () => {
    for (const c of ["Bad", "-x", ""])
      spec
        .given([])
        .when({ ...create, cluster: c })
        .thenThrows(code("invalid_argument"));
    for (const initialSize of [0, 6, 1.5])
      spec
        .given([])
        .when({ ...create, initialSize })
        .thenThrows(code("invalid_argument"));
    spec
      .given([])
      .when({ ...create, volumeSizeGb: 0 })
      .thenThrows(code("invalid_argument"));
    spec
      .given([])
      .when({ ...create, region: "" })
      .thenThrows(code("invalid_argument"));
    spec
      .given(ready)
      .when({ ...create, commandId: "c2" })
      .thenThrows(code("already_exists"));
    spec
      .given(ready)
      .when({ type: "AddMember", memberId: "m1", volumeId: "vol_9", hostId: "h1" })
      .thenThrows(code("conflict"));
  });

  it("marks the cluster ready only with a ready primary and every member ready", () => {
    const partial = [requested, ...members, memberReady(0, "primary"), memberReady(1, "replica")];
    spec
      .given(partial)
      .when({ type: "MarkClusterReady", primaryId: "m0" })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...partial, memberReady(2, "replica")])
      .when({ type: "MarkClusterReady", primaryId: "m1" })
      .thenThrows(code("failed_precondition"));
    spec.given(partial).when({ type: "MarkClusterReady", primaryId: "m9" }).thenThrows(code("not_found"));
    spec
      .given(partial)
      .when({ type: "MarkMemberReady", memberId: "m2", role: "primary", timeline: 1 })
      .thenThrows(code("failed_precondition"));
  });

  it("fails a create once and refuses to make a failed cluster ready", () => {
    const failed: PgClusterEvent = { type: "PgClusterCreateFailed", data: { cluster, reason: "no host" } };
    spec.given([requested]).when({ type: "FailCreate", reason: "no host" }).then([failed]);
    spec.given([requested, failed]).when({ type: "FailCreate", reason: "again" }).then([]);
    spec.given(ready).when({ type: "FailCreate", reason: "late" }).thenThrows(code("failed_precondition"));
    expect(fold(pgClusterDecider, [requested, failed])).toMatchObject({ status: "failed", error: "no host" });
  });
});

describe("postgres cluster decider: failover", () => {
  const start: PgClusterCommand = {
    type: "StartFailover",
    failoverId: "f1",
    kind: "failover",
    reason: "primary gone",
    startedAtMs: 5_000,
  };

  it("records start, candidate, promotion, repoint and completion", () => {
    spec.given(ready).when(start).then([started]);
    spec
      .given([...ready, started])
      .when({
        type: "ChooseCandidate",
        failoverId: "f1",
        memberId: "m1",
        lsn: "0/3000148",
        lsnBytes: 50331976,
      })
      .then([chosen]);
    spec
      .given([...ready, started, chosen])
      .when({ type: "PromoteMember", failoverId: "f1", memberId: "m1", timeline: 2 })
      .then([promoted]);
    spec
      .given([...ready, started, chosen, promoted])
      .when({ type: "RepointMember", failoverId: "f1", memberId: "m2" })
      .then([repointed]);
    const completed: PgClusterEvent = {
      type: "PgFailoverCompleted",
      data: { cluster, failoverId: "f1", newPrimaryId: "m1", timeline: 2, durationMs: 2_500 },
    };
    spec
      .given([...ready, started, chosen, promoted, repointed])
      .when({ type: "CompleteFailover", failoverId: "f1", completedAtMs: 7_500 })
      .then([completed]);
    const after = fold(pgClusterDecider, [...ready, started, chosen, promoted, repointed, completed]);
    expect(after).toMatchObject({ primary_id: "m1", timeline: 2, failover: null });
    expect(after?.members.m0).toMatchObject({ role: "replica", ready: false });
    expect(after?.members.m1).toMatchObject({ role: "primary", ready: true });
    expect(after?.members.m2).toMatchObject({ role: "replica", ready: true });
    const rejoined: PgClusterEvent = {
      type: "PgMemberRejoined",
      data: { cluster, memberId: "m0", primaryId: "m1", method: "rewind" },
    };
    spec
      .given([...ready, started, chosen, promoted, repointed, completed])
      .when({ type: "MarkRejoined", memberId: "m0", primaryId: "m1", method: "rewind" })
      .then([rejoined]);
    expect(
      fold(pgClusterDecider, [...ready, started, chosen, promoted, repointed, completed, rejoined])?.members
        .m0,
    ).toMatchObject({
      role: "replica",
      ready: true,
    });
  });

  it("refuses a second failover while one runs, and answers the same start with nothing", () => {
    spec
      .given([...ready, started])
      .when(start)
      .then([]);
    spec
      .given([...ready, started])
      .when({ ...start, failoverId: "f2", kind: "switchover" })
      .thenThrows(code("failed_precondition"));
    spec
      .given([requested, ...members])
      .when(start)
      .thenThrows(code("failed_precondition"));
  });

  it("promotes only the chosen candidate, and completes only after the promotion", () => {
    spec
      .given([...ready, started])
      .when({ type: "PromoteMember", failoverId: "f1", memberId: "m1", timeline: 2 })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, chosen])
      .when({ type: "PromoteMember", failoverId: "f1", memberId: "m2", timeline: 2 })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, chosen])
      .when({ type: "PromoteMember", failoverId: "f9", memberId: "m1", timeline: 2 })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, chosen])
      .when({ type: "CompleteFailover", failoverId: "f1", completedAtMs: 6_000 })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, chosen])
      .when({ type: "RepointMember", failoverId: "f1", memberId: "m2" })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started])
      .when({ type: "ChooseCandidate", failoverId: "f1", memberId: "m0", lsn: "0/1", lsnBytes: 1 })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, chosen, promoted])
      .when({ type: "ChooseCandidate", failoverId: "f1", memberId: "m2", lsn: "0/1", lsnBytes: 1 })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, chosen, promoted])
      .when({ type: "RepointMember", failoverId: "f1", memberId: "m1" })
      .thenThrows(code("failed_precondition"));
  });

  it("abandons a failover before its promotion only, and then allows the next one", () => {
    const abandoned: PgClusterEvent = {
      type: "PgFailoverAbandoned",
      data: { cluster, failoverId: "f1", reason: "no candidate" },
    };
    spec
      .given([...ready, started, chosen])
      .when({ type: "AbandonFailover", failoverId: "f1", reason: "no candidate" })
      .then([abandoned]);
    spec
      .given([...ready, started, chosen, promoted])
      .when({ type: "AbandonFailover", failoverId: "f1", reason: "late" })
      .thenThrows(code("failed_precondition"));
    spec
      .given([...ready, started, abandoned])
      .when({ ...start, failoverId: "f2" })
      .then([{ ...started, data: { ...started.data, failoverId: "f2" } } as PgClusterEvent]);
    expect(fold(pgClusterDecider, [...ready, started, abandoned])).toMatchObject({
      primary_id: "m0",
      failover: null,
    });
  });

  it("records fencing changes once", () => {
    const fenced: PgClusterEvent = { type: "PgMemberFenced", data: { cluster, memberId: "m0", atMs: 9 } };
    spec.given(ready).when({ type: "MarkFenced", memberId: "m0", atMs: 9 }).then([fenced]);
    spec
      .given([...ready, fenced])
      .when({ type: "MarkFenced", memberId: "m0", atMs: 10 })
      .then([]);
    spec.given(ready).when({ type: "MarkUnfenced", memberId: "m0", atMs: 10 }).then([]);
    spec
      .given([...ready, fenced])
      .when({ type: "MarkUnfenced", memberId: "m0", atMs: 10 })
      .then([{ type: "PgMemberUnfenced", data: { cluster, memberId: "m0", atMs: 10 } }]);
    spec.given(ready).when({ type: "MarkFenced", memberId: "m9", atMs: 9 }).thenThrows(code("not_found"));
    spec
      .given(ready)
      .when({ type: "MarkRejoined", memberId: "m0", primaryId: "m0", method: "follow" })
      .thenThrows(code("failed_precondition"));
    spec
      .given(ready)
      .when({ type: "MarkRejoined", memberId: "m1", primaryId: "m2", method: "follow" })
      .thenThrows(code("failed_precondition"));
  });
});

describe("postgres cluster decider: attachments and destroy", () => {
  const attach: PgClusterCommand = {
    type: "AttachDatabase",
    app: "web",
    database: "web",
    user: "web",
    variable: "DATABASE_URL",
  };
  const attached: PgClusterEvent = {
    type: "PgDatabaseAttached",
    data: { cluster, app: "web", database: "web", user: "web", variable: "DATABASE_URL" },
  };

  it("attaches an app once per variable and detaches it", () => {
    spec.given(ready).when(attach).then([attached]);
    spec
      .given([...ready, attached])
      .when(attach)
      .thenThrows(code("conflict"));
    spec
      .given([...ready, attached])
      .when({ ...attach, app: "api" })
      .thenThrows(code("conflict"));
    const detached: PgClusterEvent = {
      type: "PgDatabaseDetached",
      data: { cluster, app: "web", database: "web", user: "web" },
    };
    spec
      .given([...ready, attached])
      .when({ type: "DetachDatabase", app: "web" })
      .then([detached]);
    spec.given(ready).when({ type: "DetachDatabase", app: "web" }).thenThrows(code("not_found"));
    expect(fold(pgClusterDecider, [...ready, attached, detached])?.attachments).toEqual([]);
  });

  it("refuses bad database and user names and attaching before the cluster is ready", () => {
    for (const database of ["my-app", "1x", "DROP"])
      spec
        .given(ready)
        .when({ ...attach, database })
        .thenThrows(code("invalid_argument"));
    spec
      .given(ready)
      .when({ ...attach, user: 'web"' })
      .thenThrows(code("invalid_argument"));
    spec.given([requested]).when(attach).thenThrows(code("failed_precondition"));
  });

  it("destroys once and refuses every other command on a destroyed cluster", () => {
    spec.given(ready).when({ type: "DestroyPgCluster" }).then([destroyed]);
    spec
      .given([...ready, destroyed])
      .when({ type: "DestroyPgCluster" })
      .then([]);
    spec.given([]).when({ type: "DestroyPgCluster" }).thenThrows(code("not_found"));
    const gone = [...ready, destroyed];
    for (const command of [
      attach,
      { type: "AddMember", memberId: "m5", volumeId: "vol_5", hostId: "h1" },
      { type: "StartFailover", failoverId: "f1", kind: "switchover", reason: "asked", startedAtMs: 1 },
      { type: "MarkFenced", memberId: "m0", atMs: 1 },
      { type: "DetachDatabase", app: "web" },
    ] satisfies PgClusterCommand[])
      spec.given(gone).when(command).thenThrows(code("not_found"));
    spec
      .given(gone)
      .when({ ...create, commandId: "c2" })
      .thenThrows(code("already_exists"));
  });
});
