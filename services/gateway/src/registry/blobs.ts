import { type Digest, isDigest } from "@hangar/oci";
import type { Context } from "hono";
import { requestChunks, responseStream } from "./body.js";
import { RegistryError } from "./errors.js";
import { admitBlob, type BlobQuota } from "./quota.js";
import type { RegistryStore } from "./store.js";
import type { UploadSessions } from "./upload-sessions.js";

/** The org a push is charged to, and its quota. */
export interface OrgCharge {
  org: string;
  quota: BlobQuota;
}

/**
 * Stores a blob the org pushes: one the store already has costs nothing; a new one must fit the
 * org's quota (`size` when known before the bytes are read, else checked against what is left) and
 * is added to its usage once stored.
 */
async function chargedPut(
  store: RegistryStore,
  digest: Digest,
  charge: OrgCharge | undefined,
  size: number | undefined,
  put: () => Promise<{ size: number }>,
): Promise<void> {
  if (charge === undefined || (await store.blobs.has(digest))) {
    await put();
    return;
  }
  await admitBlob(charge.quota, charge.org, size ?? 0);
  const stored = await put();
  await charge.quota.usage.add(charge.org, stored.size);
}

/** HEAD/GET /v2/<name>/blobs/<digest>. Blobs are content-addressed and shared by every repository. */
export async function getBlob(c: Context, store: RegistryStore, digest: Digest): Promise<Response> {
  const size = await store.blobs.size(digest);
  if (size === undefined)
    throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in the registry`, { digest });
  const headers = {
    "content-type": "application/octet-stream",
    "content-length": String(size),
    "docker-content-digest": digest,
  };
  if (c.req.method === "HEAD") return c.body(null, 200, headers);
  return c.body(responseStream(await store.blobs.getStream(digest)), 200, headers);
}

/**
 * POST /v2/<name>/blobs/uploads/: a cross-repository mount (`?mount=&from=`; the blob store is
 * shared, so any stored blob mounts), a monolithic upload (`?digest=`), or a new upload session.
 */
export async function startUpload(
  c: Context,
  store: RegistryStore,
  uploads: UploadSessions,
  name: string,
  charge?: OrgCharge,
): Promise<Response> {
  const mount = c.req.query("mount");
  if (mount !== undefined && isDigest(mount) && (await store.blobs.has(mount)))
    return blobCreated(c, name, mount);
  const digest = c.req.query("digest");
  if (digest !== undefined) {
    const expected = checkedDigest(digest);
    await chargedPut(store, expected, charge, undefined, () =>
      store.blobs.putStream(uploads.capped(requestChunks(c.req.raw)), expected),
    );
    return blobCreated(c, name, expected);
  }
  // A mount of an unknown blob falls back to a plain upload, as the spec allows.
  const session = await uploads.start(name);
  return c.body(null, 202, uploadHeaders(name, session.id, 0));
}

/** GET /v2/<name>/blobs/uploads/<id>: where an upload stands. */
export function uploadStatus(c: Context, uploads: UploadSessions, name: string, id: string): Response {
  const session = uploads.get(name, id);
  return c.body(null, 204, uploadHeaders(name, id, session.size));
}

/** PATCH /v2/<name>/blobs/uploads/<id>: one more chunk (streamed, or with a Content-Range). */
export async function patchUpload(
  c: Context,
  uploads: UploadSessions,
  name: string,
  id: string,
): Promise<Response> {
  const session = uploads.get(name, id);
  await uploads.append(session, requestChunks(c.req.raw), rangeStart(c.req.header("content-range")));
  return c.body(null, 202, uploadHeaders(name, id, session.size));
}

/** PUT /v2/<name>/blobs/uploads/<id>?digest=: the last chunk, if any, then the blob is checked and stored. */
export async function finishUpload(
  c: Context,
  store: RegistryStore,
  uploads: UploadSessions,
  name: string,
  id: string,
  charge?: OrgCharge,
): Promise<Response> {
  const session = uploads.get(name, id);
  const digest = checkedDigest(c.req.query("digest"));
  await uploads.append(session, requestChunks(c.req.raw), rangeStart(c.req.header("content-range")));
  try {
    await chargedPut(store, digest, charge, session.size, () => store.blobs.putFile(session.file, digest));
  } finally {
    // A digest mismatch ends the session too: the client has to start over anyway.
    await uploads.end(session);
  }
  return blobCreated(c, name, digest);
}

/** DELETE /v2/<name>/blobs/uploads/<id>: cancels an upload. */
export async function cancelUpload(
  c: Context,
  uploads: UploadSessions,
  name: string,
  id: string,
): Promise<Response> {
  await uploads.end(uploads.get(name, id));
  return c.body(null, 204);
}

function blobCreated(c: Context, name: string, digest: Digest): Response {
  return c.body(null, 201, {
    location: `/v2/${name}/blobs/${digest}`,
    "docker-content-digest": digest,
    "content-length": "0",
  });
}

function uploadHeaders(name: string, id: string, size: number): Record<string, string> {
  return {
    location: `/v2/${name}/blobs/uploads/${id}`,
    "docker-upload-uuid": id,
    // Inclusive byte range received so far; Docker's registry writes "0-0" for an empty upload too.
    range: `0-${Math.max(size - 1, 0)}`,
    "content-length": "0",
  };
}

function checkedDigest(digest: string | undefined): Digest {
  if (digest === undefined || !isDigest(digest)) {
    throw new RegistryError(
      "DIGEST_INVALID",
      `the digest query parameter must be sha256:<64 hex digits>, got ${digest ?? "none"}`,
    );
  }
  return digest;
}

function rangeStart(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(header.trim());
  if (!m) throw new RegistryError("RANGE_INVALID", `Content-Range "${header}" is not <start>-<end>`);
  return Number(m[1]);
}
