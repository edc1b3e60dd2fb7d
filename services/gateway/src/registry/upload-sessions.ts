import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { RegistryError } from "./errors.js";

/** One blob upload in progress: its bytes so far sit in `file`. */
export interface UploadSession {
  id: string;
  repository: string;
  file: string;
  size: number;
  lastUsed: number;
  busy: boolean;
}

/** The largest blob the registry takes: 10 GiB. */
export const MAX_BLOB_BYTES = 10 * 2 ** 30;

/** How long an upload may stay untouched before it is dropped with its bytes. */
export const UPLOAD_SESSION_TTL_MS = 60 * 60 * 1000;

// A sweep at least every minute bounds how long a stale upload's file outlives its TTL.
const MAX_SWEEP_INTERVAL_MS = 60_000;

export interface UploadSessionOptions {
  /** An upload untouched for this long is dropped with its file (swept periodically). */
  ttlMs?: number;
  /** The largest blob an upload may send; beyond it the upload is refused and dropped. */
  maxBlobBytes?: number;
}

/**
 * Blob upload sessions of this gateway process: bytes go to a temp file per session until the
 * closing PUT names the digest. Sessions live in memory, so a gateway of several replicas needs
 * sticky routing of `/v2/<name>/blobs/uploads/<id>` to the replica that started the upload.
 * Stale sessions are swept on a timer that does not keep the process alive.
 */
export class UploadSessions {
  readonly #sessions = new Map<string, UploadSession>();
  readonly #ttlMs: number;
  /** The largest blob an upload may send. */
  readonly maxBlobBytes: number;

  constructor(
    private readonly dir: string,
    opts: UploadSessionOptions = {},
  ) {
    this.#ttlMs = opts.ttlMs ?? UPLOAD_SESSION_TTL_MS;
    this.maxBlobBytes = opts.maxBlobBytes ?? MAX_BLOB_BYTES;
    const every = Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(10, Math.floor(this.#ttlMs / 2)));
    setInterval(() => void this.sweep().catch(() => {}), every).unref();
  }

  /** `chunks`, refused with SIZE_INVALID once more than `maxBlobBytes - already` have passed. */
  async *capped(chunks: AsyncIterable<Uint8Array>, already = 0): AsyncIterable<Uint8Array> {
    let size = already;
    for await (const chunk of chunks) {
      size += chunk.byteLength;
      if (size > this.maxBlobBytes) {
        throw new RegistryError(
          "SIZE_INVALID",
          `blob is larger than the registry's limit of ${this.maxBlobBytes} bytes; push it in smaller layers`,
          { limit: this.maxBlobBytes },
        );
      }
      yield chunk;
    }
  }

  /** Starts a session for `repository`. */
  async start(repository: string): Promise<UploadSession> {
    await this.sweep();
    await mkdir(this.dir, { recursive: true });
    const id = randomUUID();
    const session: UploadSession = {
      id,
      repository,
      file: join(this.dir, id),
      size: 0,
      lastUsed: Date.now(),
      busy: false,
    };
    await finished(createWriteStream(session.file).end());
    this.#sessions.set(id, session);
    return session;
  }

  /** The session `id` of `repository`, or BLOB_UPLOAD_UNKNOWN. */
  get(repository: string, id: string): UploadSession {
    const session = this.#sessions.get(id);
    if (session === undefined || session.repository !== repository) {
      throw new RegistryError("BLOB_UPLOAD_UNKNOWN", `no upload ${id} in progress for ${repository}`);
    }
    session.lastUsed = Date.now();
    return session;
  }

  /**
   * Appends a chunk. `start`, from a Content-Range header, must be where the upload stands, or the
   * request is refused with 416 (the client then asks where it stands and resumes).
   */
  async append(session: UploadSession, chunks: AsyncIterable<Uint8Array>, start?: number): Promise<void> {
    if (session.busy)
      throw new RegistryError("BLOB_UPLOAD_INVALID", `upload ${session.id} is already receiving a chunk`);
    if (start !== undefined && start !== session.size) {
      throw new RegistryError(
        "RANGE_INVALID",
        `chunk starts at ${start} but the upload has ${session.size} bytes`,
        {
          size: session.size,
        },
      );
    }
    session.busy = true;
    const out = createWriteStream(session.file, { flags: "a" });
    let tooLarge = false;
    try {
      for await (const chunk of this.capped(chunks, session.size)) {
        session.size += chunk.byteLength;
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", resolve));
      }
    } catch (err) {
      tooLarge = err instanceof RegistryError && err.code === "SIZE_INVALID";
      throw err;
    } finally {
      out.end();
      await finished(out).catch(() => {});
      session.busy = false;
      session.lastUsed = Date.now();
      // An upload past the limit can never finish: its bytes go now, not at the sweep.
      if (tooLarge) await this.end(session);
    }
  }

  /** Ends a session and deletes its file. */
  async end(session: UploadSession): Promise<void> {
    this.#sessions.delete(session.id);
    await rm(session.file, { force: true });
  }

  private async sweep(): Promise<void> {
    const cutoff = Date.now() - this.#ttlMs;
    for (const session of this.#sessions.values()) {
      if (session.lastUsed < cutoff && !session.busy) await this.end(session);
    }
  }
}
