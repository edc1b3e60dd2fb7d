import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  lookupStatic,
  type MachineStatic,
  type StaticFileEntry,
  type StaticsManifest,
  staticContentType,
  staticsFileName,
  staticsManifestName,
} from "@hangar/config";
import type { Logger } from "@hangar/telemetry";
import type { ObjectStore } from "@nats-io/obj";

/** An app's statics as its route carries them: the set the builder extracts them to. */
export interface AppStatics {
  setId: string;
  statics: MachineStatic[];
}

/** How long a set not extracted yet is not asked for again (its paths go to the machines meanwhile). */
const MISSING_RECHECK_MS = 2_000;
/** Manifests kept in memory (they never change: a set's id names its image and statics). */
const MAX_MANIFESTS = 1_000;

/** What the proxy answers with itself, without a machine: a file, 304, 404 or 400. */
export interface StaticAnswer {
  status: number;
  headers: Record<string, string>;
  /** The object to stream as the body (GET of a 200 only). */
  object?: string;
  body?: string;
}

/**
 * Serves GET and HEAD of an app's `[[statics]]` paths from the hangar-statics bucket, without the
 * app's machines: a file with its Content-Type and ETag (If-None-Match gives 304), a folder's
 * index_document, 404 for a file the image does not have, 400 for a path that climbs out of the
 * folder. Until the builder has extracted the set, and for any other request, the machines answer.
 */
export class StaticFiles {
  private readonly manifests = new Map<string, StaticsManifest>();
  private readonly missing = new Map<string, number>();

  constructor(
    private readonly bucket: Pick<ObjectStore, "getBlob" | "get">,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Answers `req` from the statics if it is theirs; false leaves it to the machines. */
  async serve(
    app: string,
    set: AppStatics,
    req: IncomingMessage,
    res: ServerResponse,
    /** Headers the proxy adds to every answer (Via, Fly-Request-Id, Fly-Region). */
    signature: Record<string, string> = {},
  ): Promise<boolean> {
    const answer = await this.answer(
      app,
      set,
      req.method ?? "GET",
      req.url ?? "/",
      req.headers["if-none-match"],
    );
    if (answer === undefined) return false;
    if (answer.object === undefined) {
      res.writeHead(answer.status, { ...answer.headers, ...signature });
      res.end(answer.body);
      return true;
    }
    // Only a purged bucket loses a file its manifest lists: the machines still have it.
    const found = await this.bucket.get(answer.object);
    if (found === null) return false;
    res.writeHead(answer.status, { ...answer.headers, ...signature });
    await pipeline(
      Readable.fromWeb(found.data as import("node:stream/web").ReadableStream<Uint8Array>),
      res,
    ).catch((err: unknown) => this.logger.debug({ err, app, url: req.url }, "static file not sent whole"));
    return true;
  }

  /** What to answer, or undefined when the machines should: pure but for reading the set's manifest. */
  async answer(
    app: string,
    set: AppStatics,
    method: string,
    url: string,
    ifNoneMatch: string | undefined,
  ): Promise<StaticAnswer | undefined> {
    if (method !== "GET" && method !== "HEAD") return undefined;
    const found = lookupStatic(set.statics, url);
    if (found.kind === "none") return undefined;
    const manifest = await this.manifest(app, set.setId);
    if (manifest === undefined) return undefined;
    if (found.kind === "refused") return json(400, "bad_request", found.reason);
    const files = manifest.files[found.index] ?? {};
    const path = pick(files, found.path, found.indexDocument);
    const file = path === undefined ? undefined : own(files, path);
    if (path === undefined || file === undefined)
      return json(404, "not_found", `no file ${url.split("?")[0]} among the app's statics`);
    const etag = `"${file.sha256}"`;
    const headers: Record<string, string> = { etag, "content-type": staticContentType(path) };
    if (ifNoneMatch !== undefined && matches(ifNoneMatch, etag)) return { status: 304, headers };
    headers["content-length"] = String(file.size);
    if (method === "HEAD") return { status: 200, headers };
    return { status: 200, headers, object: staticsFileName(app, set.setId, file.sha256) };
  }

  private async manifest(app: string, setId: string): Promise<StaticsManifest | undefined> {
    const name = staticsManifestName(app, setId);
    const cached = this.manifests.get(name);
    if (cached) return cached;
    const checked = this.missing.get(name);
    if (checked !== undefined && this.now() - checked < MISSING_RECHECK_MS) return undefined;
    const bytes = await this.bucket.getBlob(name);
    if (bytes === null) {
      this.missing.set(name, this.now());
      return undefined;
    }
    this.missing.delete(name);
    const manifest = JSON.parse(Buffer.from(bytes).toString()) as StaticsManifest;
    if (this.manifests.size >= MAX_MANIFESTS) this.manifests.clear();
    this.manifests.set(name, manifest);
    return manifest;
  }
}

/** The file a path names: itself, or for a folder (or the prefix itself) its index_document. */
function pick(
  files: Record<string, StaticFileEntry>,
  path: string,
  indexDocument: string | undefined,
): string | undefined {
  if (path !== "" && own(files, path) !== undefined) return path;
  if (indexDocument === undefined) return undefined;
  const index = path === "" ? indexDocument : `${path}/${indexDocument}`;
  return own(files, index) !== undefined ? index : undefined;
}

/** The manifest's entry for a path: its own key only (a path like `constructor` or `__proto__` is no file). */
function own(files: Record<string, StaticFileEntry>, path: string): StaticFileEntry | undefined {
  return Object.hasOwn(files, path) ? files[path] : undefined;
}

/** Whether an If-None-Match header names `etag` (or is `*`), weak or strong. */
function matches(header: string, etag: string): boolean {
  return header
    .split(",")
    .map((t) => t.trim().replace(/^W\//, ""))
    .some((t) => t === "*" || t === etag);
}

/** The proxy's own refusals' shape (refusal.ts): `{"error": message, "status": code}`. */
function json(status: number, code: string, error: string): StaticAnswer {
  const body = JSON.stringify({ error, status: code });
  return {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(body)),
    },
    body,
  };
}
