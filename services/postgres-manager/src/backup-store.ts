import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { promisify } from "node:util";
import { constants, createGunzip, createGzip, gunzip, gzip } from "node:zlib";
import { patiently } from "@hangar/eventstore";
import { type ObjectInfo, type ObjectStore, Objm, StorageType } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";

/** The object store bucket holding every cluster's WAL archive and base backups. */
export const BACKUPS_BUCKET = "PG_BACKUPS";

/**
 * How stored objects are compressed. Node 20's zlib has no zstd (it came with Node 22.15), so gzip,
 * at level 1: WAL and base backups are mostly zero-padded pages that compress well even so, and the
 * manager's CPU is not the bottleneck of a backup or a restore.
 */
export const COMPRESSION = "gzip";
const GZIP_LEVEL = 1;

/** A stored object failed its check: the bytes read back are not the bytes stored. */
export class BackupIntegrityError extends Error {}

/** What was stored: the original size and sha256, and the compressed size in the bucket. */
export interface StoredObject {
  name: string;
  size: number;
  stored_size: number;
  sha256: string;
}

/** The object names of a cluster's archive: `<cluster>/wal/<file>` and `<cluster>/base/<backup id>`. */
export const objectNames = {
  wal: (cluster: string, file: string) => `${cluster}/wal/${file}`,
  base: (cluster: string, backupId: string) => `${cluster}/base/${backupId}`,
};

/** A hash of what streams through, unchanged; `expect` makes it fail at the end on another digest. */
class Sha256Pass extends Transform {
  private readonly hash = createHash("sha256");
  size = 0;
  constructor(private readonly expect?: { sha256: string; what: string }) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    this.digest = this.hash.digest("hex");
    if (this.expect && this.digest !== this.expect.sha256)
      done(
        new BackupIntegrityError(
          `${this.expect.what}: sha256 ${this.digest} read back, ${this.expect.sha256} stored: the stored copy is damaged`,
        ),
      );
    else done();
  }
  digest = "";
}

/**
 * The PG_BACKUPS object store: each object gzip-compressed, with the sha256 and size of its original
 * bytes (and what it is) in the object's metadata, written with the object in one step, so the
 * bucket's listing is the archive's index. Every read checks the sha256 of what it decompressed.
 */
export class BackupStore {
  private constructor(private readonly bucket: ObjectStore) {}

  /** Opens (creating if missing) the bucket, on disk with `replicas`. */
  static async open(nc: NatsConnection, replicas = 1): Promise<BackupStore> {
    return new BackupStore(
      await patiently(() => new Objm(nc).create(BACKUPS_BUCKET, { storage: StorageType.File, replicas })),
    );
  }

  /** Stores one archived WAL file (a segment or a history file); a file already stored with the same bytes is kept. */
  async putWal(cluster: string, file: string, bytes: Buffer): Promise<StoredObject> {
    const name = objectNames.wal(cluster, file);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const known = await this.bucket.info(name);
    if (known && !known.deleted) {
      if (known.metadata?.sha256 === sha256) return stored(known);
      throw new BackupIntegrityError(
        `${name} is archived already with other contents (sha256 ${known.metadata?.sha256}); refusing to replace archived history`,
      );
    }
    const packed = await promisify(gzip)(bytes, { level: GZIP_LEVEL });
    const info = await this.bucket.put(
      { name, metadata: { kind: "wal", sha256, size: String(bytes.length), compression: COMPRESSION } },
      Readable.toWeb(Readable.from([packed])) as unknown as ReadableStream<Uint8Array>,
    );
    return stored(info);
  }

  /** The WAL files archived for `cluster`, sorted by name. */
  async walFiles(cluster: string): Promise<string[]> {
    const prefix = objectNames.wal(cluster, "");
    const all = await this.bucket.list();
    return all
      .filter((o) => !o.deleted && o.name.startsWith(prefix))
      .map((o) => o.name.slice(prefix.length))
      .sort();
  }

  /** One archived WAL file's bytes, checked against its sha256. */
  async readWal(cluster: string, file: string): Promise<Buffer> {
    const name = objectNames.wal(cluster, file);
    const result = await this.bucket.get(name);
    if (!result || result.info.deleted) throw new BackupIntegrityError(`${name} is not in ${BACKUPS_BUCKET}`);
    const chunks: Buffer[] = [];
    for await (const chunk of Readable.fromWeb(result.data as unknown as WebReadableStream<Uint8Array>))
      chunks.push(chunk as Buffer);
    const failed = await result.error;
    if (failed) throw new BackupIntegrityError(`${name}: ${failed.message}`);
    const bytes = await promisify(gunzip)(Buffer.concat(chunks));
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (sha256 !== result.info.metadata?.sha256)
      throw new BackupIntegrityError(
        `${name}: sha256 ${sha256} read back, ${result.info.metadata?.sha256} stored: the stored copy is damaged`,
      );
    return bytes;
  }

  /**
   * Stores a base backup (a tar) streamed from `body`: hashed and compressed into a temporary file on
   * the way, then put with its digest in the metadata (no reader sees a backup without its sha256).
   */
  async putBase(cluster: string, backupId: string, body: Readable): Promise<StoredObject> {
    const name = objectNames.base(cluster, backupId);
    const dir = await mkdtemp(join(tmpdir(), "hangar-pg-backup-"));
    try {
      const file = join(dir, "base.tar.gz");
      const hash = new Sha256Pass();
      await pipeline(body, hash, createGzip({ level: GZIP_LEVEL }), createWriteStream(file));
      const packed = (await stat(file)).size;
      const info = await this.bucket.put(
        {
          name,
          metadata: { kind: "base", sha256: hash.digest, size: String(hash.size), compression: COMPRESSION },
          options: { max_chunk_size: 1024 * 1024 },
        },
        Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>,
      );
      if (info.size !== packed)
        throw new BackupIntegrityError(`${name}: ${info.size} bytes stored of ${packed}`);
      return stored(info);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * A base backup's tar as a stream, decompressed; it fails (BackupIntegrityError) at its end when
   * the bytes are not the ones stored, so a caller streaming it on must not trust what it sent before
   * the stream ended cleanly.
   */
  async openBase(cluster: string, backupId: string): Promise<{ stream: Readable; size: number }> {
    const name = objectNames.base(cluster, backupId);
    const result = await this.bucket.get(name);
    if (!result || result.info.deleted) throw new BackupIntegrityError(`${name} is not in ${BACKUPS_BUCKET}`);
    const sha256 = result.info.metadata?.sha256 ?? "";
    const source = Readable.fromWeb(result.data as unknown as WebReadableStream<Uint8Array>);
    const check = new Sha256Pass({ sha256, what: name });
    const gunzipped = createGunzip({ finishFlush: constants.Z_SYNC_FLUSH });
    // Errors of any stage (the object store's digest, gzip, the sha256) end the stream returned.
    void pipeline(source, gunzipped, check).catch((error: Error) => check.destroy(error));
    void result.error.then(
      (error) => error && check.destroy(new BackupIntegrityError(`${name}: ${error.message}`)),
    );
    return { stream: check, size: Number(result.info.metadata?.size ?? 0) };
  }
}

function stored(info: ObjectInfo): StoredObject {
  return {
    name: info.name,
    size: Number(info.metadata?.size ?? 0),
    stored_size: info.size,
    sha256: info.metadata?.sha256 ?? "",
  };
}
