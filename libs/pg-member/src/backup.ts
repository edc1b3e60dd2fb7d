import { type ChildProcess, spawn } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { chmod, chown, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError, type MemberAgent } from "./agent.js";
import { localAddress, log } from "./server.js";
import type { MemberSettings } from "./settings.js";

/**
 * Names of the files archive_command hands over: WAL segments (timeline + log + segment), their
 * partial last segment, backup history files and timeline history files. Anything else is refused,
 * so a name never walks out of the outbox.
 */
export const WAL_FILE_NAME = /^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;

/** The folders on the member's volume (the parent of PGDATA, /data in a machine). */
export function backupFolders(dataDir: string): { outbox: string; restoreWal: string; restoreBase: string } {
  const volume = dirname(dataDir);
  return {
    outbox: join(volume, "wal-outbox"),
    restoreWal: join(volume, "restore-wal"),
    restoreBase: join(volume, "restore-base"),
  };
}

/**
 * The archive_command of a member: this same bundle (run by the same node) with `archive-wal`.
 * Postgres runs it with PGDATA as the working folder and the segment's path relative to it.
 */
export function archiveCommand(node: string, bundle: string): string {
  return `'${node}' '${bundle}' archive-wal %p %f`;
}

/**
 * `archive-wal <path> <name>` (postgres' archive_command, run as the OS user postgres in PGDATA):
 * copies the finished segment into the volume's outbox atomically (a temp file, fsync, rename, fsync
 * of the folder), so a segment is either wholly in the outbox or not at all, and archiving never
 * waits for the network. The manager drains the outbox. Exit 0 only once the copy is durable; a
 * segment already there with the same bytes is fine (postgres retries after a crash), with other
 * bytes it is refused (exit 1): never overwrite archived history.
 */
export async function archiveWal(path: string | undefined, name: string | undefined): Promise<number> {
  if (!path || !name || !WAL_FILE_NAME.test(name)) {
    process.stderr.write(
      `archive-wal: usage: archive-wal <path> <wal file name>; got ${JSON.stringify([path, name])}\n`,
    );
    return 2;
  }
  const source = resolve(process.cwd(), path);
  const outbox = backupFolders(process.cwd()).outbox;
  const target = join(outbox, name);
  const bytes = await readFile(source);
  if (existsSync(target)) {
    const there = await readFile(target);
    if (there.equals(bytes)) return 0;
    process.stderr.write(
      `archive-wal: ${name} is in the outbox already with other contents; refusing to overwrite it\n`,
    );
    return 1;
  }
  await mkdir(outbox, { recursive: true, mode: 0o700 });
  const temp = join(outbox, `.${name}.${process.pid}.tmp`);
  const file = await open(temp, "w", 0o600);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, target);
  const folder = await open(outbox, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
  return 0;
}

/** What a base backup of this member came to (GET /basebackup/<id>). */
export interface BaseBackupResult {
  id: string;
  state: "running" | "done" | "failed";
  /** The backup's label: its backup history file in the archive (`LABEL: ...`) names it. */
  label: string;
  bytes: number;
  error: string | null;
}

/** Backup ids the manager hands out: they go into a query string, the label and log lines. */
const BACKUP_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The label of base backup `id`; its start LSN and timeline are in the archived backup history file. */
export function backupLabel(id: string): string {
  return `hangar-backup-${id}`;
}

/** Tells why `time` is not a recovery target time (RFC 3339 with a zone), or undefined. */
export function recoveryTargetProblem(time: unknown): string | undefined {
  if (time === undefined) return undefined;
  if (
    typeof time !== "string" ||
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(time) ||
    Number.isNaN(Date.parse(time))
  )
    return "recovery_target_time must be an RFC 3339 time with a zone, e.g. 2026-12-05T11:30:00Z";
  return undefined;
}

/**
 * The command-line settings of the private postgres a restore recovers with: no TCP listener (only
 * the agent's unix socket, peer authentication), no archiving of what it replays, no synchronous
 * standbys of the source cluster to wait for, restore_command reading the uploaded segments, and the
 * target (none: to the end of the uploaded WAL), then a promotion to a fresh timeline.
 */
export function recoveryArgs(o: {
  port: number;
  socketDir: string;
  restoreWal: string;
  targetTime?: string;
}): string[] {
  const settings: Record<string, string> = {
    listen_addresses: "",
    port: String(o.port),
    unix_socket_directories: o.socketDir,
    archive_mode: "off",
    synchronous_standby_names: "",
    default_transaction_read_only: "off",
    primary_conninfo: "",
    restore_command: `cp ${o.restoreWal}/%f %p`,
    recovery_target_action: "promote",
    recovery_target_timeline: "latest",
    ...(o.targetTime === undefined ? {} : { recovery_target_time: o.targetTime }),
  };
  return Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
}

type RawHandler = (req: IncomingMessage, res: ServerResponse, rest: string) => Promise<void>;

/**
 * The member's backup side of the control API (docs/postgres.md "Backups"): the WAL outbox the
 * manager drains, base backups streamed as a tar, and a restore into an empty member (the base
 * backup and WAL uploaded, then recovery to a time and a promotion). The routes take and give raw
 * bytes, so they are served before the JSON routes; the same bearer token guards them.
 */
export class MemberBackups {
  private readonly folders: ReturnType<typeof backupFolders>;
  private readonly results = new Map<string, BaseBackupResult>();
  private restoring = false;

  constructor(
    private readonly s: MemberSettings,
    private readonly agent: MemberAgent,
  ) {
    this.folders = backupFolders(s.dataDir);
  }

  /** Makes the outbox (postgres' archive_command writes there, so it belongs to the OS user postgres). */
  async prepare(): Promise<void> {
    await mkdir(this.folders.outbox, { recursive: true, mode: 0o700 });
    await this.own(this.folders.outbox);
  }

  /** Serves a backup route; false when `method path` is none of them (the JSON routes come next). */
  async handle(req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<boolean> {
    const routes: [string, string, RawHandler][] = [
      ["GET", "/wal", (_q, r) => this.listWal(r)],
      ["POST", "/wal/switch", (_q, r) => this.switchWal(r)],
      ["GET", "/wal/", (_q, r, name) => this.sendWal(r, name)],
      ["DELETE", "/wal/", (_q, r, name) => this.deleteWal(r, name)],
      ["GET", "/basebackup", (q, r) => this.baseBackup(q, r)],
      ["GET", "/basebackup/", (_q, r, id) => this.baseBackupResult(r, id)],
      ["PUT", "/restore/base", (q, r) => this.receiveBase(q, r)],
      ["PUT", "/restore/wal/", (q, r, name) => this.receiveWal(q, r, name)],
      ["POST", "/restore", (q, r) => this.restore(q, r)],
    ];
    for (const [m, prefix, handler] of routes) {
      if (m !== method) continue;
      const exact = path === prefix;
      const under = prefix.endsWith("/") && path.startsWith(prefix) && path.length > prefix.length;
      if (!exact && !under) continue;
      try {
        await handler(req, res, under ? decodeURIComponent(path.slice(prefix.length)) : "");
      } catch (error) {
        // Half an answer was sent: only cutting the connection tells the caller it is torn.
        if (!res.headersSent) throw error;
        res.destroy(error as Error);
      }
      return true;
    }
    return false;
  }

  // --- WAL outbox ---------------------------------------------------------------------------------

  private async listWal(res: ServerResponse): Promise<void> {
    const names = await readdir(this.folders.outbox).catch(() => [] as string[]);
    json(res, 200, { files: names.filter((n) => WAL_FILE_NAME.test(n)).sort() });
  }

  private async sendWal(res: ServerResponse, name: string): Promise<void> {
    const file = this.walFile(name);
    const info = await stat(file).catch(() => undefined);
    if (!info) throw new ApiError(404, "not_found", `${name} is not in the WAL outbox`);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": info.size });
    await pipeline(createReadStream(file), res);
  }

  private async deleteWal(res: ServerResponse, name: string): Promise<void> {
    const file = this.walFile(name);
    const existed = existsSync(file);
    await rm(file, { force: true });
    json(res, 200, { deleted: existed });
  }

  /** pg_switch_wal() on a primary, so the segment holding the latest commits is archived now. */
  private async switchWal(res: ServerResponse): Promise<void> {
    const status = await this.agent.status();
    if (status.role !== "primary")
      throw new ApiError(409, "failed_precondition", "only a primary switches WAL");
    // The segment just completed (on a segment boundary, pg_walfile_name names the one before it).
    const [row] = await this.agent.pg.query<{ lsn: string; file: string }>(
      "SELECT lsn::text, pg_walfile_name(lsn) AS file FROM pg_switch_wal() AS lsn",
      [],
      10_000,
    );
    const file = row?.file ?? "";
    // Answered once the archiver has put that segment in the outbox, so a drain right after has it.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [archived] = await this.agent.pg.query<{ last: string | null }>(
        "SELECT last_archived_wal AS last FROM pg_stat_archiver",
        [],
        5_000,
      );
      if (archived?.last && archived.last.slice(0, 24) >= file) break;
      if (Date.now() > deadline)
        throw new ApiError(503, "unavailable", `${file} was not archived within 30 s: see the member's log`);
      await sleep(100);
    }
    json(res, 200, { lsn: row?.lsn ?? null, file });
  }

  private walFile(name: string): string {
    if (!WAL_FILE_NAME.test(name))
      throw new ApiError(400, "invalid_argument", `${JSON.stringify(name)} is not a WAL file name`);
    return join(this.folders.outbox, name);
  }

  // --- base backups -------------------------------------------------------------------------------

  /**
   * Streams `pg_basebackup -D - -Ft -X none --checkpoint=fast` (base.tar) as the body; the WAL comes
   * from the archive: postgres waits until the backup's last segment and its backup history file
   * (start LSN and timeline, under the backup's label) are in the outbox. GET /basebackup/<id> says
   * how it ended; a failure half-way cuts the connection, so no torn tar passes for a backup.
   */
  private async baseBackup(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const id = new URL(req.url ?? "/", "http://member").searchParams.get("id") ?? "";
    if (!BACKUP_ID.test(id))
      throw new ApiError(400, "invalid_argument", "id must be 1-64 letters, digits, - or _");
    const status = await this.agent.status();
    if (status.role !== "primary" || status.fenced || !status.pg_up)
      throw new ApiError(409, "failed_precondition", "base backups are taken on the unfenced primary");
    if ([...this.results.values()].some((r) => r.state === "running"))
      throw new ApiError(409, "failed_precondition", "a base backup is running on this member");
    const result: BaseBackupResult = { id, state: "running", label: backupLabel(id), bytes: 0, error: null };
    this.results.set(id, result);
    const child = this.tool(
      "pg_basebackup",
      [
        "-h",
        localAddress(this.s.listen),
        "-p",
        String(this.s.pgPort),
        "-U",
        "postgres",
        "-w",
        "-D",
        "-",
        "-Ft",
        "-X",
        "none",
        "--checkpoint=fast",
        "-l",
        result.label,
      ],
      { PGPASSWORD: this.s.operatorPassword, PGAPPNAME: "hangar-basebackup" },
    );
    let output = "";
    child.stderr?.on("data", (b: Buffer) => (output = (output + b.toString()).slice(-8_000)));
    const exited = new Promise<number | null>((done) => child.once("close", (code) => done(code)));
    res.writeHead(200, { "content-type": "application/x-tar" });
    child.stdout?.on("data", (b: Buffer) => (result.bytes += b.length));
    // The manager went away: the backup stops too.
    res.once("close", () => {
      if (child.exitCode === null) child.kill("SIGTERM");
    });
    try {
      await pipeline(child.stdout as NodeJS.ReadableStream, res, { end: false });
    } catch (error) {
      child.kill("SIGTERM");
      output += `\n${(error as Error).message}`;
    }
    const code = await exited;
    if (code === 0) {
      result.state = "done";
      res.end();
      log("base backup streamed", { id, bytes: result.bytes });
    } else {
      result.state = "failed";
      result.error = `pg_basebackup failed (exit ${code}): ${output.trim().slice(-600)}`;
      log("base backup failed", { id, error: result.error });
      res.destroy(new Error(result.error));
    }
  }

  private async baseBackupResult(res: ServerResponse, id: string): Promise<void> {
    const result = this.results.get(id);
    if (!result)
      throw new ApiError(404, "not_found", `no base backup ${id} on this member since its agent started`);
    json(res, 200, result);
  }

  // --- restore ------------------------------------------------------------------------------------

  private async requireEmpty(): Promise<void> {
    const status = await this.agent.status();
    if (status.state !== "empty" || existsSync(join(this.s.dataDir, "PG_VERSION")))
      throw new ApiError(
        409,
        "failed_precondition",
        `member ${this.s.memberId} is not empty (${status.state}): restore into a new member`,
      );
    if (this.restoring) throw new ApiError(409, "failed_precondition", "a restore is running on this member");
  }

  /** The base backup's tar, unpacked (as the OS user postgres) beside PGDATA until POST /restore. */
  private async receiveBase(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.requireEmpty();
    const dir = this.folders.restoreBase;
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await this.own(dir);
    const tar = spawn("tar", ["-x", "-f", "-", "-C", dir], {
      ...(this.agent.pg.owner ?? {}),
      stdio: ["pipe", "ignore", "pipe"],
    });
    let output = "";
    tar.stderr?.on("data", (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((done) => tar.once("close", (code) => done(code)));
    await pipeline(req, tar.stdin as NodeJS.WritableStream).catch(
      (error: Error) => (output += error.message),
    );
    const code = await exited;
    if (code !== 0 || !existsSync(join(dir, "PG_VERSION")))
      throw new ApiError(
        400,
        "invalid_argument",
        `the body is not a base backup tar (tar exit ${code}): ${output.trim().slice(-400)}`,
      );
    json(res, 200, { received: true });
  }

  /** One archived WAL file for the restore (temp + rename: restore_command never sees half a file). */
  private async receiveWal(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    if (!WAL_FILE_NAME.test(name))
      throw new ApiError(400, "invalid_argument", `${JSON.stringify(name)} is not a WAL file name`);
    await this.requireEmpty();
    const dir = this.folders.restoreWal;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await this.own(dir);
    const temp = join(dir, `.${name}.tmp`);
    const file = await open(temp, "w", 0o600);
    try {
      await pipeline(req, file.createWriteStream());
    } finally {
      await file.close().catch(() => undefined);
    }
    await this.own(temp);
    await rename(temp, join(dir, name));
    json(res, 200, { received: name });
  }

  /**
   * Recovers the uploaded base backup with the uploaded WAL up to `recovery_target_time` (or the end
   * of the WAL) in a private postgres, which promotes it to a fresh timeline; sets the new cluster's
   * passwords (the backup has the source cluster's); then the agent runs it as its unfenced primary.
   */
  private async restore(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readSmallJson(req);
    const problem = recoveryTargetProblem(body.recovery_target_time);
    if (problem) throw new ApiError(400, "invalid_argument", problem);
    const target =
      body.recovery_target_time === undefined
        ? undefined
        : // Postgres reads "YYYY-MM-DD HH:MM:SS.sss+00", not RFC 3339's T and Z.
          new Date(Date.parse(body.recovery_target_time as string))
            .toISOString()
            .replace("T", " ")
            .replace("Z", "+00");
    await this.requireEmpty();
    if (!existsSync(join(this.folders.restoreBase, "PG_VERSION")))
      throw new ApiError(409, "failed_precondition", "no base backup was uploaded (PUT /restore/base)");
    this.restoring = true;
    try {
      const status = await this.agent.adopt(() => this.recover(target));
      json(res, 200, status);
    } finally {
      this.restoring = false;
    }
  }

  private async recover(target: string | undefined): Promise<void> {
    const data = this.s.dataDir;
    await rm(data, { recursive: true, force: true });
    await rename(this.folders.restoreBase, data);
    await chmod(data, 0o700);
    // A backup of a replica would carry standby.signal: the restore recovers to a primary.
    await rm(join(data, "standby.signal"), { force: true });
    await writeFile(join(data, "recovery.signal"), "");
    await this.own(join(data, "recovery.signal"));
    await mkdir(this.folders.restoreWal, { recursive: true, mode: 0o700 });
    await this.own(this.folders.restoreWal);
    const socketDir = join(dirname(data), "run");
    const args = recoveryArgs({
      port: this.s.pgPort,
      socketDir,
      restoreWal: this.folders.restoreWal,
      ...(target ? { targetTime: target } : {}),
    });
    log("restore: recovering", { target: target ?? "end of WAL" });
    const postgres = this.tool("postgres", ["-D", data, ...args]);
    let output = "";
    postgres.stderr?.on("data", (b: Buffer) => (output = (output + b.toString()).slice(-8_000)));
    postgres.stdout?.resume();
    const exited = new Promise<number | null>((done) => postgres.once("close", (code) => done(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    const psql = (sql: string) => this.psql(socketDir, sql);
    try {
      const deadline = Date.now() + 30 * 60_000;
      for (;;) {
        if (gone)
          throw new ApiError(409, "failed_precondition", `recovery failed: ${output.trim().slice(-800)}`);
        const answer = await psql("SELECT pg_is_in_recovery()").catch(() => "");
        if (answer === "f") break;
        if (Date.now() > deadline)
          throw new ApiError(503, "unavailable", "recovery did not finish within 30 minutes");
        await sleep(200);
      }
      // The backup holds the source cluster's passwords: this cluster's secrets replace them (a failed
      // statement is logged without its text, which names them).
      await psql(
        `SET log_min_error_statement = panic; ALTER ROLE postgres WITH PASSWORD ${sqlString(this.s.operatorPassword)}; ALTER ROLE repl WITH PASSWORD ${sqlString(this.s.replPassword)}; CHECKPOINT;`,
      );
      log("restore: recovered and promoted", {
        timeline: await psql("SELECT timeline_id FROM pg_control_checkpoint()"),
      });
    } finally {
      if (!gone) postgres.kill("SIGINT");
      await exited;
    }
    await rm(this.folders.restoreWal, { recursive: true, force: true });
  }

  /** Runs SQL through psql over the unix socket as the OS user postgres (peer): no password on a command line. */
  private psql(socketDir: string, sql: string): Promise<string> {
    return runPsql(
      this.tool("psql", [
        "-h",
        socketDir,
        "-p",
        String(this.s.pgPort),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-Atq",
        "-v",
        "ON_ERROR_STOP=1",
      ]),
      sql,
    );
  }

  private tool(name: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    return spawn(join(this.s.binDir, name), args, {
      ...(this.agent.pg.owner ?? {}),
      cwd: "/",
      env: { PATH: `${this.s.binDir}:/usr/bin:/bin`, LANG: "C.UTF-8", HOME: "/tmp", TZ: "UTC", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
  }

  private async own(path: string): Promise<void> {
    const owner = this.agent.pg.owner;
    if (owner) await chown(path, owner.uid, owner.gid);
  }
}

/**
 * Writes `sql` to a spawned psql's input and resolves to what it printed once it exits 0; rejects with
 * its output otherwise. A psql that exits before reading its input (Postgres not up yet, as while a
 * recovery is polled) makes the write fail with EPIPE: its exit says why, and that error, unheard,
 * would end the whole member agent.
 */
export function runPsql(child: ChildProcess, sql: string): Promise<string> {
  return new Promise((done, fail) => {
    let out = "";
    child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (out += b.toString()));
    child.once("error", fail);
    child.once("close", (code) => (code === 0 ? done(out.trim()) : fail(new Error(`psql: ${out.trim()}`))));
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(sql);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

async function readSmallJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = "";
  for await (const chunk of req) {
    text += (chunk as Buffer).toString();
    if (text.length > 4_096)
      throw new ApiError(400, "invalid_argument", "the body is larger than 4096 bytes");
  }
  if (text.trim() === "") return {};
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === "object" && body !== null && !Array.isArray(body))
      return body as Record<string, unknown>;
  } catch {
    // Refused below.
  }
  throw new ApiError(400, "invalid_argument", "the body must be a JSON object");
}
