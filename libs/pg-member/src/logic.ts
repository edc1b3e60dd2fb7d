import { isIP } from "node:net";

/** A member of the cluster as the manager names it: its machine id and its 6PN address. */
export interface Member {
  id: string;
  address: string;
}

/** What a peer's GET /status said, as far as routing needs it. */
export interface PeerView {
  id: string;
  address: string;
  role: "primary" | "replica" | null;
  fenced: boolean;
  timeline: number | null;
}

/** Machine ids (and the test's member names): what may stand in application_name and the sync list. */
const MEMBER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Why `value` is not a list of members, or undefined when it is one. */
export function membersProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return "members must be an array of {id, address}";
  const ids = new Set<string>();
  for (const m of value) {
    const problem = memberProblem(m);
    if (problem) return problem;
    const id = (m as Member).id;
    if (ids.has(id)) return `member ${id} is listed twice`;
    ids.add(id);
  }
  return undefined;
}

/** Why `value` is not one member {id, address} (an IP address: it goes into conninfo and URLs). */
export function memberProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return "a member must be an object {id, address}";
  const { id, address } = value as Record<string, unknown>;
  if (typeof id !== "string" || !MEMBER_ID.test(id))
    return "a member's id must be 1-64 letters, digits, - or _";
  if (typeof address !== "string" || isIP(address) === 0)
    return `member ${id}'s address must be an IP address, not ${JSON.stringify(address)}`;
  return undefined;
}

/** Whether this member plus the peers it saw are a strict majority of `memberCount` (itself included). */
export function hasMajority(memberCount: number, peersSeen: number): boolean {
  // Not configured yet (or a single member): nothing to lose touch with.
  if (memberCount <= 1) return true;
  return (1 + peersSeen) * 2 > memberCount;
}

/**
 * Whether a primary fences now: it has not had a majority since `lastMajorityAt`, for at least
 * `fenceAfterMs`. Only primaries that are not fenced already are asked.
 */
export function shouldFence(o: { now: number; lastMajorityAt: number; fenceAfterMs: number }): boolean {
  return o.now - o.lastMajorityAt >= o.fenceAfterMs;
}

/**
 * The member new router connections go to: a primary that is not fenced, the one of the highest
 * timeline if several say so (the newest promotion); none when no member qualifies.
 */
export function routerTarget(views: readonly PeerView[]): PeerView | undefined {
  let best: PeerView | undefined;
  for (const v of views) {
    if (v.role !== "primary" || v.fenced) continue;
    if (best === undefined || (v.timeline ?? 0) > (best.timeline ?? 0)) best = v;
  }
  return best;
}

/** synchronous_standby_names for a primary among `members`: ANY 1 of the others with 3 or more members, else none. */
export function synchronousStandbyNames(selfId: string, members: readonly Member[]): string {
  if (members.length < 3) return "";
  const others = members.filter((m) => m.id !== selfId).map((m) => `"${m.id}"`);
  return others.length === 0 ? "" : `ANY 1 (${others.join(", ")})`;
}

/** A standby name no member has: a fenced primary waits on it, so no write commit is acknowledged. */
export const FENCED_STANDBY = "hangar_fenced";

/** One value of a libpq conninfo string, quoted. */
export function conninfoValue(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A libpq conninfo string of `params`. */
export function conninfo(params: Record<string, string | number>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${conninfoValue(String(v))}`)
    .join(" ");
}

/** A postgresql.conf string literal. */
export function confString(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** The settings a member's postgres runs with: what the agent writes to its include file. */
export interface ServerConf {
  port: number;
  listen: string;
  socketDir: string;
  selfId: string;
  members: readonly Member[];
  /** Set on a replica: where it streams from. */
  primary?: Member;
  replPassword: string;
  fenced: boolean;
  /** Extra `name = value` lines (HANGAR_PG_CONF). */
  extra: readonly string[];
  /** The WAL archive helper (backup.ts archiveCommand); none: archiving off. */
  archiveCommand?: string;
}

/** The postgres listen_addresses for the agent's listen address: `::` (every address) is `*`. */
export function listenAddresses(listen: string): string {
  return listen === "::" || listen === "0.0.0.0" || listen === "*" ? "*" : listen;
}

/** The text of the agent's include file hangar.conf, read after postgresql.conf. */
export function serverConfText(c: ServerConf): string {
  const sync = c.fenced ? FENCED_STANDBY : synchronousStandbyNames(c.selfId, c.members);
  const lines = [
    "# Written by the Hangar member agent on every change of role, members or fencing; edits are lost.",
    `port = ${c.port}`,
    `listen_addresses = ${confString(listenAddresses(c.listen))}`,
    `unix_socket_directories = ${confString(c.socketDir)}`,
    "wal_level = replica",
    "wal_log_hints = on",
    "hot_standby = on",
    "max_wal_senders = 10",
    "wal_keep_size = '1GB'",
    "synchronous_commit = on",
    "password_encryption = 'scram-sha-256'",
    "recovery_target_timeline = 'latest'",
    // How soon a standby tries its primary again once streaming stopped (5 s by default): a failover's
    // repointed replica, or a rejoined member, streams within this of its new primary_conninfo, and
    // with 3+ members the new primary takes no commit until one does.
    "wal_retrieve_retry_interval = '500ms'",
    `synchronous_standby_names = ${confString(sync)}`,
    `default_transaction_read_only = ${c.fenced ? "on" : "off"}`,
    `primary_conninfo = ${confString(
      c.primary === undefined
        ? ""
        : conninfo({
            host: c.primary.address,
            port: c.port,
            user: "repl",
            password: c.replPassword,
            application_name: c.selfId,
            sslmode: "disable",
            connect_timeout: 5,
          }),
    )}`,
    // archive_mode needs a restart, so it is on from the first start; a replica archives nothing.
    ...(c.archiveCommand
      ? ["archive_mode = on", `archive_command = ${confString(c.archiveCommand)}`, "archive_timeout = '60s'"]
      : []),
    ...c.extra,
  ];
  return `${lines.join("\n")}\n`;
}

/** pg_hba.conf of a member: local peer, and scram-sha-256 over TCP for every address (6PN, the control plane). */
export function pgHbaText(): string {
  return [
    "# Written by the Hangar member agent at bootstrap.",
    "local all all peer",
    "host all all 0.0.0.0/0 scram-sha-256",
    "host all all ::/0 scram-sha-256",
    "host replication all 0.0.0.0/0 scram-sha-256",
    "host replication all ::/0 scram-sha-256",
    "",
  ].join("\n");
}

/** An LSN as Postgres prints it ("0/3000148") as a number of bytes; null stays null. */
export function lsnBytes(lsn: string | null): number | null {
  if (lsn === null) return null;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m?.[1] || !m[2]) return null;
  return Number.parseInt(m[1], 16) * 2 ** 32 + Number.parseInt(m[2], 16);
}

/**
 * Where each ancestor timeline of a timeline ends, from its history file (`pg_wal/<TLI>.history`:
 * lines of parent timeline, switch point LSN and reason; comments and blank lines skipped).
 */
export function parseTimelineHistory(text: string): Map<number, number> {
  const ends = new Map<number, number>();
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith("#")) continue;
    const timeline = Number(fields[0]);
    const end = lsnBytes(fields[1] ?? null);
    if (!Number.isInteger(timeline) || timeline < 1 || end === null)
      throw new Error(`timeline history: unreadable line ${JSON.stringify(line)}`);
    ends.set(timeline, end);
  }
  return ends;
}

/**
 * Whether a standby on `timeline` that holds WAL up to `heldBytes` can follow a primary on
 * `primaryTimeline` with this history (parseTimelineHistory) by streaming alone. It cannot when its
 * timeline is not an ancestor of the primary's, or when it holds WAL past the point where the
 * primary's history left its timeline (postgres then logs "new timeline N forked off current
 * database system timeline M before current recovery point" and waits forever): such WAL was never
 * on the primary, and only pg_rewind (or a new base backup) takes the member back onto its history.
 * That happens, for one, to a replica that streamed an old primary's end-of-recovery checkpoint when
 * it restarted after another member was promoted.
 */
export function canFollowByStreaming(o: {
  timeline: number;
  heldBytes: number;
  primaryTimeline: number;
  history: ReadonlyMap<number, number>;
}): boolean {
  if (o.timeline === o.primaryTimeline) return true;
  if (o.timeline > o.primaryTimeline) return false;
  const end = o.history.get(o.timeline);
  return end !== undefined && o.heldBytes <= end;
}

/** Database and user names the API accepts (they are used as SQL identifiers). */
export const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The uid and gid of `user` in an /etc/passwd text, or undefined. */
export function passwdEntry(passwd: string, user: string): { uid: number; gid: number } | undefined {
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === user && uid !== undefined && gid !== undefined)
      return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/**
 * postgresql.conf lines sized to the machine's memory limit (bytes; undefined: none known): a
 * quarter for shared_buffers, as Fly's postgres does, so a 256 MB member does not give postgres'
 * default 128 MB to the buffer pool beside node. HANGAR_PG_CONF lines come after and win.
 */
export function memoryConf(limitBytes: number | undefined): string[] {
  if (limitBytes === undefined || !Number.isFinite(limitBytes) || limitBytes <= 0) return [];
  const quarterMb = Math.floor(limitBytes / 4 / 1024 / 1024);
  return [`shared_buffers = '${Math.max(16, quarterMb)}MB'`];
}
