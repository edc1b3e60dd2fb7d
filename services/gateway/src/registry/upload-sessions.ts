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

/**
 * Blob upload sessions of this gateway process: bytes go to a temp file per session until the
 * closing PUT names the digest. Sessions live in memory, so a gateway of several replicas needs
 * sticky routing of `/v2/<name>/blobs/uploads/<id>` to the replica that started the upload.
 */
export class UploadSessions {
  readonly #sessions = new Map<string, UploadSession>();

  constructor(
    private readonly dir: string,
    /** An upload untouched for this long is dropped with its file. */
    private readonly ttlMs = 60 * 60 * 1000,
  ) {}

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
    try {
      for await (const chunk of chunks) {
        session.size += chunk.byteLength;
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", resolve));
      }
    } finally {
      out.end();
      await finished(out).catch(() => {});
      session.busy = false;
      session.lastUsed = Date.now();
    }
  }

  /** Ends a session and deletes its file. */
  async end(session: UploadSession): Promise<void> {
    this.#sessions.delete(session.id);
    await rm(session.file, { force: true });
  }

  private async sweep(): Promise<void> {
    const cutoff = Date.now() - this.ttlMs;
    for (const session of this.#sessions.values()) {
      if (session.lastUsed < cutoff && !session.busy) await this.end(session);
    }
  }
}
