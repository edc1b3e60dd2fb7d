import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { DomainErrorCode } from "@hangar/eventstore";
import { CommandError } from "@hangar/service";
import { BackupIntegrityError, type BackupStore, type StoredObject } from "./backup-store.js";
import type { MemberStatus } from "./member-client.js";

/** Where the manager reaches one member agent's control API, with the cluster's token. */
export interface AgentEndpoint {
  /** The machine's host-local address (or a test's loopback address). */
  address: string;
  port: number;
  token: string;
}

/** A base backup as stored: the object, and where its WAL starts. */
export interface BaseBackupFacts extends StoredObject {
  start_lsn: string;
  timeline: number;
}

/** WAL segments of 16 MB (initdb's default, which the members keep): 256 per 4 GB "log" number. */
const SEGMENTS_PER_LOG = 256;
const SEGMENT_BYTES = 16 * 1024 * 1024;

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

/** A WAL segment file name's timeline and segment number; undefined for other archived files. */
export function walSegment(file: string): { timeline: number; segno: number } | undefined {
  const m = SEGMENT.exec(file);
  if (!m?.[1] || !m[2] || !m[3]) return undefined;
  return {
    timeline: Number.parseInt(m[1], 16),
    segno: Number.parseInt(m[2], 16) * SEGMENTS_PER_LOG + Number.parseInt(m[3], 16),
  };
}

/** The segment number holding an LSN ("0/3000028"). */
export function lsnSegment(lsn: string): number {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m?.[1] || !m[2]) throw new CommandError(`not an LSN: ${JSON.stringify(lsn)}`, "internal");
  return Math.floor((Number.parseInt(m[1], 16) * 2 ** 32 + Number.parseInt(m[2], 16)) / SEGMENT_BYTES);
}

/**
 * The archived files a restore of a base backup needs: every timeline history file, and each
 * segment from the backup's start segment on, on its timeline or a later one (recovery follows the
 * latest timeline). Backup history files and partial segments are never asked for by recovery.
 */
export function walForRestore(
  files: readonly string[],
  backup: { start_lsn: string; timeline: number },
): string[] {
  const start = lsnSegment(backup.start_lsn);
  return files.filter((f) => {
    if (/^[0-9A-F]{8}\.history$/.test(f)) return true;
    const seg = walSegment(f);
    return seg !== undefined && seg.timeline >= backup.timeline && seg.segno >= start;
  });
}

/** What a backup history file (`<segment>.<offset>.backup`, archived at the end of a base backup) says. */
export function backupHistory(
  text: string,
): { label: string; start_lsn: string; timeline: number } | undefined {
  const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(text)?.[1];
  const timeline = /^START TIMELINE: (\d+)/m.exec(text)?.[1];
  const label = /^LABEL: (.*)$/m.exec(text)?.[1];
  if (!start || !timeline || label === undefined) return undefined;
  return { label, start_lsn: start, timeline: Number(timeline) };
}

/** The archived backup history file of the base backup labelled `label` (newest files first). */
async function findBackupHistory(store: BackupStore, cluster: string, label: string) {
  const files = (await store.walFiles(cluster)).filter((f) => f.endsWith(".backup")).reverse();
  for (const file of files) {
    const facts = backupHistory((await store.readWal(cluster, file)).toString("utf8"));
    if (facts?.label === label) return facts;
  }
  return undefined;
}

const CODES: Record<string, DomainErrorCode> = {
  invalid_argument: "invalid_argument",
  failed_precondition: "failed_precondition",
  not_found: "not_found",
  unavailable: "unavailable",
};

/** One control API call; the agent's refusals keep their code, no answer is `unavailable`. */
async function agentFetch(
  at: AgentEndpoint,
  method: string,
  path: string,
  opts: { body?: Readable | string; timeoutMs?: number } = {},
): Promise<Response> {
  const host = at.address.includes(":") ? `[${at.address}]` : at.address;
  let res: Response;
  try {
    res = await fetch(`http://${host}:${at.port}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${at.token}`,
        ...(typeof opts.body === "string" ? { "content-type": "application/json" } : {}),
        ...(opts.body instanceof Readable ? { "content-type": "application/octet-stream" } : {}),
      },
      ...(opts.body === undefined ? {} : { body: opts.body as unknown as string, duplex: "half" }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    } as RequestInit);
  } catch (err) {
    throw new CommandError(
      `member agent at ${at.address} did not answer ${method} ${path}: ${String(err)}`,
      "unavailable",
      { cause: err },
    );
  }
  if (!res.ok) {
    const text = await res.text();
    let e: { error?: string; code?: string } = {};
    try {
      e = JSON.parse(text) as typeof e;
    } catch {
      e = { error: text };
    }
    throw new CommandError(
      `member agent at ${at.address}: ${method} ${path}: ${res.status} ${e.error ?? text}`,
      (e.code && CODES[e.code]) || "unavailable",
    );
  }
  return res;
}

async function agentJson<R>(
  at: AgentEndpoint,
  method: string,
  path: string,
  opts: { body?: string; timeoutMs?: number } = {},
): Promise<R> {
  return (await (await agentFetch(at, method, path, opts)).json()) as R;
}

/**
 * Moves the member's WAL outbox into the archive: each file fetched, stored (compressed, with its
 * sha256) and only then deleted on the member. Answers how many files moved.
 */
export async function drainWal(at: AgentEndpoint, store: BackupStore, cluster: string): Promise<number> {
  const { files } = await agentJson<{ files: string[] }>(at, "GET", "/wal");
  for (const file of files) {
    const res = await agentFetch(at, "GET", `/wal/${file}`, { timeoutMs: 120_000 });
    await store.putWal(cluster, file, Buffer.from(await res.arrayBuffer()));
    await agentFetch(at, "DELETE", `/wal/${file}`);
  }
  return files.length;
}

/** pg_switch_wal() on the primary: the segment with its latest commits goes to the outbox now. */
export async function switchWal(at: AgentEndpoint): Promise<void> {
  await agentFetch(at, "POST", "/wal/switch");
}

/**
 * A base backup of the primary at `at`: its tar streamed into the store, then the outbox drained (the
 * backup's WAL and backup history file, which postgres put there before the tar ended), so the
 * backup can be restored as soon as this answers; its start LSN and timeline come from that file.
 */
export async function takeBaseBackup(
  at: AgentEndpoint,
  store: BackupStore,
  cluster: string,
  backupId: string,
): Promise<BaseBackupFacts> {
  const res = await agentFetch(at, "GET", `/basebackup?id=${encodeURIComponent(backupId)}`, {
    timeoutMs: 6 * 3600_000,
  });
  if (!res.body) throw new CommandError("the base backup answered no body", "unavailable");
  let stored: StoredObject;
  try {
    stored = await store.putBase(
      cluster,
      backupId,
      Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>),
    );
  } catch (err) {
    // A cut stream: the agent's answer says why.
    const why = await agentJson<{ error: string | null }>(at, "GET", `/basebackup/${backupId}`).catch(() => ({
      error: null,
    }));
    throw new CommandError(`base backup ${backupId} failed: ${why.error ?? String(err)}`, "unavailable", {
      cause: err,
    });
  }
  const result = await agentJson<{ state: string; label: string; error: string | null }>(
    at,
    "GET",
    `/basebackup/${backupId}`,
  );
  if (result.state !== "done")
    throw new CommandError(`base backup ${backupId} failed: ${result.error ?? result.state}`, "unavailable");
  await drainWal(at, store, cluster);
  const history = await findBackupHistory(store, cluster, result.label);
  if (!history)
    throw new CommandError(
      `base backup ${backupId}: its backup history file (label ${result.label}) is not in the archive`,
      "unavailable",
    );
  return { ...stored, start_lsn: history.start_lsn, timeline: history.timeline };
}

/**
 * Restores `backup` of cluster `source` into the empty member at `at`: the tar (checked against its
 * sha256 as it streams), every WAL file it needs (each checked), then POST /restore, which recovers
 * to `targetTime` (RFC 3339; none: the end of the archive), promotes, and answers the member's status
 * as a primary. A damaged object fails the restore (failed_precondition) before recovery starts.
 */
export async function restoreToMember(
  at: AgentEndpoint,
  store: BackupStore,
  source: string,
  backup: { id: string; start_lsn: string; timeline: number },
  targetTime?: string,
): Promise<{ status: MemberStatus; bytes: number }> {
  let bytes = 0;
  const damaged = (err: unknown): never => {
    const m = err instanceof BackupIntegrityError ? err.message : String(err);
    throw new CommandError(`restore of ${source}'s backup ${backup.id} failed: ${m}`, "failed_precondition", {
      cause: err,
    });
  };
  const base = await store.openBase(source, backup.id).catch(damaged);
  let integrity: Error | undefined;
  base.stream.once("error", (err) => (integrity = err));
  bytes += base.size;
  try {
    await agentFetch(at, "PUT", "/restore/base", { body: base.stream, timeoutMs: 6 * 3600_000 });
  } catch (err) {
    if (integrity) damaged(integrity);
    throw err;
  }
  if (integrity) damaged(integrity);
  for (const file of walForRestore(await store.walFiles(source), backup)) {
    const wal = await store.readWal(source, file).catch(damaged);
    bytes += wal.length;
    await agentFetch(at, "PUT", `/restore/wal/${file}`, { body: Readable.from([wal]), timeoutMs: 120_000 });
  }
  const status = await agentJson<MemberStatus>(at, "POST", "/restore", {
    body: JSON.stringify(targetTime === undefined ? {} : { recovery_target_time: targetTime }),
    timeoutMs: 3600_000,
  });
  return { status, bytes };
}
