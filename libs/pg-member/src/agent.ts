import { existsSync } from "node:fs";
import { appendFile, chmod, chown, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import {
  canFollowByStreaming,
  conninfo,
  hasMajority,
  lsnBytes,
  type Member,
  memoryConf,
  type PeerView,
  parseTimelineHistory,
  pgHbaText,
  routerTarget,
  SQL_NAME,
  serverConfText,
  shouldFence,
} from "./logic.js";
import { log, PostgresProcess } from "./server.js";
import type { MemberSettings } from "./settings.js";

/** A refusal or failure of a control API call, with its HTTP status and the contract's code. */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 409 | 503,
    readonly code:
      | "invalid_argument"
      | "failed_precondition"
      | "unavailable"
      | "unauthenticated"
      | "not_found",
    message: string,
  ) {
    super(message);
  }
}

/** One replica as the primary sees it (pg_stat_replication). */
export interface ReplicationView {
  member_id: string;
  state: string;
  sync_state: string;
  replay_lag_ms: number | null;
  flush_lsn: string | null;
}

/** GET /status: what the member is, as the contract in docs/postgres.md says. */
export interface MemberStatus {
  member_id: string;
  state: "empty" | "starting" | "primary" | "replica" | "stopped";
  role: "primary" | "replica" | null;
  fenced: boolean;
  pg_up: boolean;
  timeline: number | null;
  lsn: { current: string | null; receive: string | null; replay: string | null };
  lsn_bytes: { current: number | null; receive: number | null; replay: number | null };
  replication: ReplicationView[];
  majority: boolean;
  peers_seen: string[];
  members: Member[];
  xact_commit: number;
  numbackends: number;
  sync_standby_names: string;
  /** How this member last became a replica of its primary: rewind, basebackup or follow (null: never). */
  rejoined_with: "rewind" | "basebackup" | "follow" | null;
  /** Times postgres died on its own (and was restarted) since the agent started. */
  pg_crashes: number;
  /** How old postgres' answer behind this status is (ms): near 0 when it answered this call; null without one. */
  pg_answer_age_ms: number | null;
}

interface LocalSnapshot {
  recovery: boolean;
  current: string | null;
  receive: string | null;
  replay: string | null;
  timeline: number | null;
  sync_names: string;
  receiver_status: string | null;
  sender_host: string | null;
  xact_commit: string;
  numbackends: number;
  replication: ReplicationView[];
}

const STATUS_SQL = `SELECT pg_is_in_recovery() AS recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current,
  pg_last_wal_receive_lsn()::text AS receive,
  pg_last_wal_replay_lsn()::text AS replay,
  CASE WHEN pg_is_in_recovery()
    THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
    ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
  current_setting('synchronous_standby_names') AS sync_names,
  (SELECT status FROM pg_stat_wal_receiver) AS receiver_status,
  (SELECT sender_host FROM pg_stat_wal_receiver) AS sender_host,
  (SELECT coalesce(sum(xact_commit), 0)::text FROM pg_stat_database) AS xact_commit,
  (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS numbackends,
  coalesce((SELECT json_agg(json_build_object('member_id', application_name, 'state', state,
      'sync_state', sync_state, 'replay_lag_ms', (extract(epoch FROM replay_lag) * 1000)::float8,
      'flush_lsn', flush_lsn::text) ORDER BY application_name) FROM pg_stat_replication), '[]'::json) AS replication`;

/**
 * Put first in a transaction that names a password: if the statement fails, postgres logs the error
 * without the statement (log_min_error_statement), so no password reaches the member's log.
 */
const NO_STATEMENT_IN_LOG = "SET LOCAL log_min_error_statement = panic;";

/**
 * On a primary: its timeline and that timeline's history file (pg_wal/<%08X>.history; timeline 1 has
 * none). Superuser only (pg_read_file), as pg_rewind's source connection is.
 */
const TIMELINE_HISTORY_SQL = `SELECT tli AS timeline,
  CASE WHEN tli > 1 THEN pg_read_file('pg_wal/' || lpad(upper(to_hex(tli)), 8, '0') || '.history') ELSE '' END AS history
  FROM (SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli) t`;

/** How long postgres' last status answer stands in for one that did not come in time (ms). */
const SNAPSHOT_STALE_MS = 2_000;

/** How long a fresh status (GET /status/fresh, a failover's choice) waits for postgres' answer (ms). */
const FRESH_STATUS_WAIT_MS = 5_000;

/** How long replicate and follow wait for the replica to stream before answering unavailable. */
const STREAM_WAIT_MS = 30_000;

/**
 * The member agent: owns postgres (bootstrap, replicate, promote, follow), fences a primary that
 * lost the majority, and tells the router where the primary is. The control API calls its methods.
 */
export class MemberAgent {
  private members: Member[] = [];
  private primary: Member | undefined;
  private fenced = false;
  private phase: "empty" | "starting" | "running" | "stopped" = "starting";
  private rejoinedWith: MemberStatus["rejoined_with"] = null;
  private lastMajorityAt = Date.now();
  private majority = true;
  /** The role postgres had when it last answered (null: not running), and its timeline then. */
  private lastRole: "primary" | "replica" | null = null;
  private lastTimeline: number | null = null;
  /**
   * The timeline this replica last streamed on (pg_stat_wal_receiver's received_tli). Once its
   * primary is gone the receiver row goes, and the status falls back to the last checkpoint's
   * timeline, which lags a switch of timeline until the next restartpoint.
   */
  private lastStreamedTimeline: number | null = null;
  /** Postgres' last answer to the status query, and when it came. */
  private lastSnapshot: { row: LocalSnapshot; at: number } | undefined;
  private peersSeen: string[] = [];
  /** The last answer of each member (this one too) and when it came: what the router chooses from. */
  private readonly views = new Map<string, { view: PeerView; at: number }>();
  private busy: Promise<unknown> = Promise.resolve();
  private ticking: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly pg: PostgresProcess;
  private readonly stateFile: string;
  private readonly socketDir: string;

  constructor(
    private readonly s: MemberSettings,
    private readonly onTarget: (target: Member | undefined) => void = () => {},
  ) {
    this.pg = new PostgresProcess(s);
    this.stateFile = join(dirname(s.dataDir), "hangar-member.json");
    this.socketDir = join(dirname(s.dataDir), "run");
  }

  private get hasData(): boolean {
    return existsSync(join(this.s.dataDir, "PG_VERSION"));
  }

  private get isStandbyDir(): boolean {
    return existsSync(join(this.s.dataDir, "standby.signal"));
  }

  /** Loads the stored members and starts postgres if there is a data directory (a primary's starts fenced). */
  async start(): Promise<void> {
    const stored = await readFile(this.stateFile, "utf8").then(
      (text) => JSON.parse(text) as { members?: Member[]; primary?: Member },
      () => ({}) as { members?: Member[]; primary?: Member },
    );
    this.members = stored.members ?? [];
    this.primary = stored.primary;
    await this.prepareFolders();
    this.scheduleTick();
    if (!this.hasData) {
      this.phase = "empty";
    } else {
      // Only the manager decides who is primary: a primary's data directory comes back fenced.
      this.fenced = !this.isStandbyDir;
      if (this.fenced)
        log("existing primary data directory: starting fenced until the manager says unfence or rejoin");
      await this.exclusive(() => this.run());
    }
  }

  /** Stops the checks and postgres (fast shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.ticking);
    this.phase = "stopped";
    await this.pg.stop();
  }

  /** The member's status; never waits more than ~300 ms on postgres (one that has not answered for 2 s is pg_up false). */
  async status(fresh = false): Promise<MemberStatus> {
    // fresh: postgres' own answer now (waiting up to FRESH_STATUS_WAIT_MS), never an older one standing in.
    const snap = fresh ? await this.snapshot(FRESH_STATUS_WAIT_MS, false) : await this.snapshot();
    const role = snap === undefined ? null : snap.recovery ? "replica" : "primary";
    const state =
      this.phase === "running" ? (role ?? "starting") : this.phase === "empty" ? "empty" : this.phase;
    return {
      member_id: this.s.memberId,
      state,
      role,
      fenced: this.fenced,
      pg_up: snap !== undefined,
      timeline: snap?.timeline ?? null,
      lsn: { current: snap?.current ?? null, receive: snap?.receive ?? null, replay: snap?.replay ?? null },
      lsn_bytes: {
        current: lsnBytes(snap?.current ?? null),
        receive: lsnBytes(snap?.receive ?? null),
        replay: lsnBytes(snap?.replay ?? null),
      },
      replication: snap?.replication ?? [],
      majority: this.majority,
      peers_seen: this.peersSeen,
      members: this.members,
      xact_commit: Number(snap?.xact_commit ?? 0),
      numbackends: snap?.numbackends ?? 0,
      sync_standby_names: snap?.sync_names ?? "",
      rejoined_with: this.rejoinedWith,
      pg_crashes: this.pg.crashes,
      pg_answer_age_ms:
        snap === undefined
          ? null
          : Date.now() - (snap === this.lastSnapshot?.row ? this.lastSnapshot.at : Date.now()),
    };
  }

  private async snapshot(timeoutMs?: number, allowStale = true): Promise<LocalSnapshot | undefined> {
    if (!this.pg.running) {
      this.lastRole = null;
      this.lastSnapshot = undefined;
      return undefined;
    }
    try {
      const [row] = await this.pg.query<LocalSnapshot>(STATUS_SQL, [], timeoutMs);
      if (row) {
        this.lastRole = row.recovery ? "replica" : "primary";
        this.lastTimeline = row.timeline;
        if (row.recovery && row.receiver_status === "streaming") this.lastStreamedTimeline = row.timeline;
        this.lastSnapshot = { row, at: Date.now() };
      }
      return row;
    } catch {
      // One slow answer on a loaded host is not a dead postgres: the last answer stands for
      // SNAPSHOT_STALE_MS, after which a postgres that does not answer is reported down. The status
      // says how old it is (pg_answer_age_ms): a failover never chooses by an old WAL position.
      const last = this.lastSnapshot;
      if (!allowStale) return undefined;
      return last !== undefined && Date.now() - last.at < SNAPSHOT_STALE_MS ? last.row : undefined;
    }
  }

  /** Stores the members (id + address) and, on a primary, sets synchronous_standby_names from them. */
  configure(members: Member[]): Promise<MemberStatus> {
    return this.exclusive(async () => {
      this.members = members;
      await this.save();
      if (this.hasData) await this.applyConf();
      return this.status();
    });
  }

  /** initdb and start as an unfenced primary; only on an empty member (again after success: its status). */
  bootstrap(members: Member[]): Promise<MemberStatus> {
    return this.exclusive(async () => {
      if (this.hasData) {
        const status = await this.status();
        if (status.role === "primary" || (status.state === "starting" && !this.isStandbyDir)) return status;
        throw new ApiError(
          409,
          "failed_precondition",
          `member ${this.s.memberId} has data: it is a ${status.state}`,
        );
      }
      this.members = members;
      this.primary = undefined;
      this.fenced = false;
      await this.save();
      await this.emptyDataDir();
      const pwfile = join(this.socketDir, "initdb.pw");
      await writeFile(pwfile, `${this.s.operatorPassword}\n`, { mode: 0o600 });
      await this.own(pwfile);
      try {
        await this.pg.runTool("initdb", [
          "-D",
          this.s.dataDir,
          "--data-checksums",
          "-U",
          "postgres",
          `--pwfile=${pwfile}`,
          "--auth-local=peer",
          "--auth-host=scram-sha-256",
          "-E",
          "UTF8",
          "--locale=C",
        ]);
      } finally {
        await rm(pwfile, { force: true });
      }
      await writeFile(join(this.s.dataDir, "pg_hba.conf"), pgHbaText());
      await appendFile(join(this.s.dataDir, "postgresql.conf"), "\ninclude_if_exists = 'hangar.conf'\n");
      await this.run();
      // No replica streams yet: this one commit does not wait for the synchronous standbys.
      await this.pg.query(
        `BEGIN; SET LOCAL synchronous_commit = local; ${NO_STATEMENT_IN_LOG} CREATE ROLE repl WITH REPLICATION LOGIN PASSWORD ${pg.escapeLiteral(this.s.replPassword)}; COMMIT`,
        [],
        10_000,
      );
      log("bootstrapped as primary", { members: members.map((m) => m.id) });
      return this.status();
    });
  }

  /**
   * Becomes a streaming replica of `primary`: a base backup into an empty member; else postgres stops,
   * pg_rewind brings the data directory onto the primary's history (a fresh base backup when it
   * fails) and it starts as a standby, unfenced. Answers once it streams.
   */
  replicate(primary: Member): Promise<MemberStatus> {
    return this.exclusive(async () => {
      if (primary.id === this.s.memberId)
        throw new ApiError(400, "invalid_argument", "a member cannot replicate itself");
      const snap = await this.snapshot();
      if (snap?.recovery && this.streamsFrom(snap, primary)) return this.status();
      this.primary = primary;
      await this.save();
      await this.rejoinFrom(primary);
      return this.status();
    });
  }

  /**
   * A base backup into an empty member; else postgres stops and pg_rewind brings the data directory
   * onto `primary`'s history (a fresh base backup when it fails). Then it starts as a standby,
   * unfenced, and this answers once it streams. Runs inside `exclusive`.
   */
  private async rejoinFrom(primary: Member): Promise<void> {
    // What it streamed before belongs to the data directory this replaces or rewinds.
    this.lastStreamedTimeline = null;
    if (!this.hasData) {
      await this.baseBackup(primary);
    } else {
      this.phase = "stopped";
      await this.pg.stop();
      try {
        const out = await this.pg.runTool(
          "pg_rewind",
          ["-D", this.s.dataDir, `--source-server=${this.sourceServer(primary)}`],
          {
            PGPASSWORD: this.s.operatorPassword,
          },
        );
        log("pg_rewind done", { primary: primary.id, output: out.trim().split("\n").slice(-2).join(" ") });
        this.rejoinedWith = "rewind";
      } catch (error) {
        log("pg_rewind failed; taking a fresh base backup", {
          primary: primary.id,
          error: (error as Error).message,
        });
        await this.baseBackup(primary);
      }
    }
    await writeFile(join(this.s.dataDir, "standby.signal"), "");
    await this.own(join(this.s.dataDir, "standby.signal"));
    this.fenced = false;
    await this.run();
    await this.waitStreaming(primary);
  }

  /** Promotes a replica (pg_promote, waiting up to 30 s); it comes out an unfenced primary. */
  promote(): Promise<MemberStatus> {
    return this.exclusive(async () => {
      const snap = await this.snapshot();
      if (snap === undefined) throw new ApiError(503, "unavailable", "postgres is not up");
      if (!snap.recovery) {
        if (this.fenced)
          throw new ApiError(409, "failed_precondition", "this member is a fenced primary: unfence it");
        return this.status();
      }
      // The primary's settings (synchronous_standby_names first) are in force before the promotion.
      this.primary = undefined;
      this.fenced = false;
      await this.save();
      await this.applyConf();
      const [row] = await this.pg.query<{ promoted: boolean }>(
        "SELECT pg_promote(true, 30) AS promoted",
        [],
        35_000,
      );
      if (!row?.promoted) throw new ApiError(503, "unavailable", "pg_promote did not finish within 30 s");
      // pg_control shows the new timeline only after a checkpoint; pg_rewind against this primary reads it there.
      await this.pg.query("CHECKPOINT", [], 30_000);
      this.lastMajorityAt = Date.now();
      log("promoted to primary");
      return this.status();
    });
  }

  /**
   * A replica streams from `primary` from now on (new conninfo, reload), on its timeline; answers
   * once it streams. A replica that holds WAL the new primary's history never had (see
   * canFollowByStreaming) could never stream from it: it rejoins with pg_rewind instead.
   */
  follow(primary: Member): Promise<MemberStatus> {
    return this.exclusive(async () => {
      if (primary.id === this.s.memberId)
        throw new ApiError(400, "invalid_argument", "a member cannot follow itself");
      const snap = await this.snapshot();
      if (snap === undefined) throw new ApiError(503, "unavailable", "postgres is not up");
      if (!snap.recovery)
        throw new ApiError(409, "failed_precondition", "a primary cannot follow: use replicate");
      this.primary = primary;
      await this.save();
      await this.applyConf();
      // WAL may still come from the old primary (restarted) until its receiver is gone: only then is
      // what this replica holds final, and the check below sound.
      const settled = await this.receiverSettled(primary);
      const diverged = settled && (await this.divergedFrom(primary, settled));
      if (diverged) {
        log("holds WAL the new primary's history does not have: rejoining with pg_rewind", {
          primary: primary.id,
          ...diverged,
        });
        await this.rejoinFrom(primary);
        return this.status();
      }
      await this.waitStreaming(primary);
      this.rejoinedWith = "follow";
      return this.status();
    });
  }

  /**
   * A snapshot taken once no WAL receiver streams from anyone but `primary` (postgres restarts the
   * receiver on a new primary_conninfo), or undefined when that does not happen within 5 s.
   */
  private async receiverSettled(primary: Member): Promise<LocalSnapshot | undefined> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const snap = await this.snapshot(undefined, false);
      if (snap && (snap.receiver_status === null || snap.sender_host === primary.address)) return snap;
      await sleep(50);
    }
    return undefined;
  }

  /**
   * What shows that this replica cannot follow `primary` by streaming (its timeline and WAL held
   * against the primary's timeline history), or undefined when it can or the primary cannot say (then
   * a plain follow is tried, as before).
   */
  private async divergedFrom(
    primary: Member,
    snap: LocalSnapshot,
  ): Promise<{ timeline: number; held: string; primary_timeline: number } | undefined> {
    const timeline = Math.max(this.lastStreamedTimeline ?? 0, snap.timeline ?? 0);
    const held = [snap.receive, snap.replay]
      .map((lsn) => ({ lsn, bytes: lsnBytes(lsn) }))
      .reduce((a, b) => ((b.bytes ?? -1) > (a.bytes ?? -1) ? b : a));
    if (timeline === 0 || held.bytes === null || held.lsn === null) return undefined;
    const client = new pg.Client({
      host: primary.address,
      port: this.s.pgPort,
      user: "postgres",
      database: "postgres",
      password: this.s.operatorPassword,
      connectionTimeoutMillis: 5_000,
      query_timeout: 5_000,
    });
    client.on("error", () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ timeline: number; history: string }>(TIMELINE_HISTORY_SQL);
      const row = rows[0];
      if (!row) return undefined;
      const history = parseTimelineHistory(row.history);
      if (canFollowByStreaming({ timeline, heldBytes: held.bytes, primaryTimeline: row.timeline, history }))
        return undefined;
      return { timeline, held: held.lsn, primary_timeline: row.timeline };
    } catch (error) {
      log("could not read the new primary's timeline history; following it", {
        primary: primary.id,
        error: (error as Error).message,
      });
      return undefined;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Fences (read-only, waiting client backends terminated); a no-op unless postgres is a primary. */
  fence(reason: string): Promise<MemberStatus> {
    return this.exclusive(async () => {
      await this.fenceNow(reason);
      return this.status();
    });
  }

  /** Lifts the fence (the manager's word: this member is the primary). */
  unfence(): Promise<MemberStatus> {
    return this.exclusive(async () => {
      if (this.fenced) {
        this.fenced = false;
        this.lastMajorityAt = Date.now();
        await this.applyConf();
        await this.waitSetting("off");
        log("unfenced");
      }
      return this.status();
    });
  }

  /** Creates (or resets the password of) a login user and a database it owns; primary only. */
  createDatabase(database: string, user: string, password: string): Promise<{ created: boolean }> {
    return this.exclusive(async () => {
      await this.requireWritablePrimary();
      const [role] = await this.pg.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [user], 5_000);
      const secret = pg.escapeLiteral(password);
      await this.pg.query(
        `BEGIN; ${NO_STATEMENT_IN_LOG} ${role ? "ALTER" : "CREATE"} ROLE "${user}" WITH LOGIN PASSWORD ${secret}; COMMIT`,
        [],
        5_000,
      );
      const [db] = await this.pg.query("SELECT 1 FROM pg_database WHERE datname = $1", [database], 5_000);
      if (!db) await this.pg.query(`CREATE DATABASE "${database}" OWNER "${user}"`, [], 60_000);
      return { created: !db };
    });
  }

  /** Drops a database and its user (absent ones are fine); primary only. */
  dropDatabase(database: string, user: string): Promise<{ dropped: boolean }> {
    return this.exclusive(async () => {
      await this.requireWritablePrimary();
      await this.pg.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`, [], 60_000);
      await this.pg.query(`DROP ROLE IF EXISTS "${user}"`, [], 5_000);
      return { dropped: true };
    });
  }

  /**
   * A restore (backup.ts): on an empty member only, `prepare` leaves a recovered, promoted data
   * directory in PGDATA; then postgres runs it as this member's unfenced primary.
   */
  adopt(prepare: () => Promise<void>): Promise<MemberStatus> {
    return this.exclusive(async () => {
      if (this.hasData)
        throw new ApiError(409, "failed_precondition", `member ${this.s.memberId} has data already`);
      this.primary = undefined;
      this.fenced = false;
      await this.save();
      await prepare();
      await this.run();
      log("restored; running as primary");
      return this.status();
    });
  }

  /** Checks that SQL names are identifiers the API accepts. */
  static checkNames(names: Record<string, unknown>): void {
    for (const [field, value] of Object.entries(names)) {
      if (typeof value !== "string" || !SQL_NAME.test(value))
        throw new ApiError(400, "invalid_argument", `${field} must match ${SQL_NAME.source}`);
    }
  }

  private async requireWritablePrimary(): Promise<void> {
    const snap = await this.snapshot();
    if (snap === undefined) throw new ApiError(503, "unavailable", "postgres is not up");
    if (snap.recovery || this.fenced)
      throw new ApiError(409, "failed_precondition", `member ${this.s.memberId} is not an unfenced primary`);
  }

  // --- the checks: peers, majority, fencing, the router's target -----------------------------------

  private scheduleTick(delay = 0): void {
    if (this.stopped) return;
    this.ticking = setTimeout(() => {
      const started = Date.now();
      this.tick(started)
        .catch((error: unknown) => log("check failed", { error: (error as Error).message }))
        .finally(() => this.scheduleTick(Math.max(0, this.s.fenceCheckMs - (Date.now() - started))));
    }, delay);
  }

  /** One round: ask every peer's /status (answered within the check interval), count, fence, route. */
  private async tick(started: number): Promise<void> {
    const peers = this.members.filter((m) => m.id !== this.s.memberId);
    // The peers and the member's own postgres at once: a round takes at most one check interval.
    const [answers, snap] = await Promise.all([
      Promise.all(peers.map((m) => this.peerStatus(m))),
      this.snapshot(this.s.fenceCheckMs),
    ]);
    const views = answers.filter((v): v is PeerView => v !== undefined);
    this.peersSeen = views.map((v) => v.id);
    // An answer without postgres (pg_up false: down, or slower than the status bound) counts for
    // the majority but leaves the member's last routing view to age out.
    for (const v of views) if (v.role !== null) this.views.set(v.id, { view: v, at: started });
    const count = this.members.length + (this.members.some((m) => m.id === this.s.memberId) ? 0 : 1);
    this.majority = hasMajority(count, views.length);
    if (this.majority) this.lastMajorityAt = started;
    // A primary too slow to answer its own status this round is still fenced on time.
    if (
      this.lastRole === "primary" &&
      !this.fenced &&
      shouldFence({ now: Date.now(), lastMajorityAt: this.lastMajorityAt, fenceAfterMs: this.s.fenceAfterMs })
    ) {
      await this.exclusive(() =>
        this.fenceNow(`saw no majority of ${count} members for ${Date.now() - this.lastMajorityAt} ms`),
      );
    }
    const self = this.members.find((m) => m.id === this.s.memberId);
    if (self && this.lastRole !== null) {
      this.views.set(self.id, {
        view: {
          ...self,
          role: this.lastRole,
          fenced: this.fenced,
          timeline: snap?.timeline ?? this.lastTimeline,
        },
        at: snap ? Date.now() : (this.views.get(self.id)?.at ?? 0),
      });
    }
    // A member that missed a round or two keeps its place for the fencing bound: a slow answer
    // does not close the router's connections, and a primary cut off longer has fenced itself.
    const fresh = [...this.views.values()]
      .filter((v) => v.at >= Date.now() - this.s.fenceAfterMs && this.members.some((m) => m.id === v.view.id))
      .map((v) => v.view);
    const target = routerTarget(fresh);
    this.onTarget(target && { id: target.id, address: target.address });
  }

  private async peerStatus(m: Member): Promise<PeerView | undefined> {
    const host = m.address.includes(":") ? `[${m.address}]` : m.address;
    try {
      const res = await fetch(`http://${host}:${this.s.controlPort}/status`, {
        headers: { authorization: `Bearer ${this.s.agentToken}` },
        signal: AbortSignal.timeout(this.s.fenceCheckMs),
      });
      if (!res.ok) return undefined;
      const body = (await res.json()) as MemberStatus;
      return { id: m.id, address: m.address, role: body.role, fenced: body.fenced, timeline: body.timeline };
    } catch {
      return undefined;
    }
  }

  private async fenceNow(reason: string): Promise<void> {
    if (this.fenced) return;
    await this.snapshot(this.s.fenceCheckMs);
    if (this.lastRole !== "primary") return;
    this.fenced = true;
    log("fencing: writes refused until the manager says unfence or rejoin", { reason });
    // The settings are written and postgres told (a signal) whether or not it answers SQL now.
    await this.applyConf();
    try {
      await this.waitSetting("on");
      // Sessions that began before the reload (and commits waiting for a standby) end here.
      await this.pg.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        [],
        5_000,
      );
    } finally {
      // The agent's other connections were among them.
      this.pg.resetConnections();
    }
  }

  // --- postgres plumbing -----------------------------------------------------------------------------

  private async run(): Promise<void> {
    this.phase = "starting";
    await this.writeConf();
    await this.pg.start();
    this.phase = "running";
  }

  private async applyConf(): Promise<void> {
    await this.writeConf();
    this.pg.reload();
  }

  private async writeConf(): Promise<void> {
    const file = join(this.s.dataDir, "hangar.conf");
    const text = serverConfText({
      port: this.s.pgPort,
      listen: this.s.listen,
      socketDir: this.socketDir,
      selfId: this.s.memberId,
      members: this.members,
      ...(this.primary ? { primary: this.primary } : {}),
      replPassword: this.s.replPassword,
      fenced: this.fenced,
      extra: [...memoryConf(this.s.memoryLimit), ...this.s.extraConf],
      ...(this.s.archiveCommand ? { archiveCommand: this.s.archiveCommand } : {}),
    });
    await writeFile(`${file}.tmp`, text, { mode: 0o600 });
    await this.own(`${file}.tmp`);
    await rename(`${file}.tmp`, file);
  }

  /** Waits until a fresh setting of default_transaction_read_only is in force (the reload is asynchronous). */
  private async waitSetting(value: "on" | "off"): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const [row] = await this.pg
        .query<{ v: string }>(
          "SELECT setting AS v FROM pg_settings WHERE name = 'default_transaction_read_only'",
        )
        .catch(() => [] as { v: string }[]);
      if (row?.v === value) return;
      await sleep(20);
    }
    throw new ApiError(
      503,
      "unavailable",
      `postgres did not take default_transaction_read_only = ${value} within 5 s`,
    );
  }

  private streamsFrom(snap: LocalSnapshot, primary: Member): boolean {
    return snap.receiver_status === "streaming" && snap.sender_host === primary.address;
  }

  private async waitStreaming(primary: Member): Promise<void> {
    const deadline = Date.now() + STREAM_WAIT_MS;
    while (Date.now() < deadline) {
      const snap = await this.snapshot();
      if (snap?.recovery && this.streamsFrom(snap, primary)) return;
      await sleep(100);
    }
    throw new ApiError(
      503,
      "unavailable",
      `not streaming from ${primary.id} (${primary.address}) after ${STREAM_WAIT_MS / 1000} s`,
    );
  }

  private sourceServer(primary: Member): string {
    return conninfo({
      host: primary.address,
      port: this.s.pgPort,
      user: "postgres",
      dbname: "postgres",
      sslmode: "disable",
      connect_timeout: 10,
    });
  }

  private async baseBackup(primary: Member): Promise<void> {
    await this.emptyDataDir();
    await this.pg.runTool(
      "pg_basebackup",
      [
        "-h",
        primary.address,
        "-p",
        String(this.s.pgPort),
        "-U",
        "repl",
        "-D",
        this.s.dataDir,
        "-X",
        "stream",
        "-c",
        "fast",
        "-w",
      ],
      { PGPASSWORD: this.s.replPassword, PGAPPNAME: this.s.memberId },
    );
    this.rejoinedWith = "basebackup";
    log("base backup taken", { primary: primary.id });
  }

  private async emptyDataDir(): Promise<void> {
    const names = await readdir(this.s.dataDir).catch(() => [] as string[]);
    await Promise.all(names.map((name) => rm(join(this.s.dataDir, name), { recursive: true, force: true })));
    await mkdir(this.s.dataDir, { recursive: true });
    await chmod(this.s.dataDir, 0o700);
    await this.own(this.s.dataDir);
  }

  private async prepareFolders(): Promise<void> {
    await mkdir(this.socketDir, { recursive: true });
    await chmod(this.socketDir, 0o700);
    await this.own(this.socketDir);
  }

  private async own(path: string): Promise<void> {
    const owner = this.pg.owner;
    if (owner) await chown(path, owner.uid, owner.gid);
  }

  private async save(): Promise<void> {
    const text = JSON.stringify({
      members: this.members,
      ...(this.primary ? { primary: this.primary } : {}),
    });
    await writeFile(`${this.stateFile}.tmp`, text);
    await rename(`${this.stateFile}.tmp`, this.stateFile);
  }

  /** Runs control actions one at a time; a failed tool is unavailable (503), never a 500. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run.catch((error: unknown) => {
      if (error instanceof ApiError) throw error;
      // A tool, postgres or the file system failed: the member cannot do it now.
      throw new ApiError(503, "unavailable", error instanceof Error ? error.message : String(error));
    });
  }
}
