import { type Digest, isDigest, isRepositoryName } from "@hangar/oci";
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
 * Stores a blob the org pushes into repository `name` and links it there: one the store already
 * has costs nothing (its bytes are still read and checked, so only a pusher who has them gets it
 * linked); a new one must fit the org's quota (`size` when known before the bytes are read, else
 * checked against what is left) and is added to its usage once stored.
 */
async function chargedPut(
  store: RegistryStore,
  name: string,
  digest: Digest,
  charge: OrgCharge | undefined,
  size: number | undefined,
  put: () => Promise<{ size: number }>,
): Promise<void> {
  if (charge === undefined || (await store.blobs.has(digest))) {
    await put();
  } else {
    await admitBlob(charge.quota, charge.org, size ?? 0);
    const stored = await put();
    await charge.quota.usage.add(charge.org, stored.size);
  }
  await store.linkBlob(name, digest);
}

/**
 * HEAD/GET /v2/<name>/blobs/<digest>. Blobs are content-addressed and stored once for every
 * repository, but a repository serves only those linked to it: another repository's blob is
 * BLOB_UNKNOWN here, as if not stored (so a client pushing it uploads its bytes).
 */
export async function getBlob(
  c: Context,
  store: RegistryStore,
  name: string,
  digest: Digest,
): Promise<Response> {
  const size = (await store.hasBlob(name, digest)) ? await store.blobs.size(digest) : undefined;
  if (size === undefined)
    throw new RegistryError("BLOB_UNKNOWN", `blob ${digest} is not in repository ${name}`, { digest });
  const headers = {
    "content-type": "application/octet-stream",
    "content-length": String(size),
    "docker-content-digest": digest,
  };
  if (c.req.method === "HEAD") return c.body(null, 200, headers);
  return c.body(responseStream(await store.blobs.getStream(digest)), 200, headers);
}

/**
 * POST /v2/<name>/blobs/uploads/: a cross-repository mount (`?mount=&from=`), a monolithic upload
 * (`?digest=`), or a new upload session. A mount needs a `from` the token may pull (`mayPull`) that
 * the blob is linked to; anything else falls back to an upload session, as the spec allows, so the
 * answer says nothing of what another org's repository holds.
 */
export async function startUpload(
  c: Context,
  store: RegistryStore,
  uploads: UploadSessions,
  name: string,
  mayPull: (repository: string) => boolean,
  charge?: OrgCharge,
): Promise<Response> {
  const mount = c.req.query("mount");
  const from = c.req.query("from");
  if (
    mount !== undefined &&
    isDigest(mount) &&
    from !== undefined &&
    isRepositoryName(from) &&
    mayPull(from) &&
    (await store.hasBlob(from, mount))
  ) {
    await store.linkBlob(name, mount);
    return blobCreated(c, name, mount);
  }
  const digest = c.req.query("digest");
  if (digest !== undefined) {
    const expected = checkedDigest(digest);
    await chargedPut(store, name, expected, charge, undefined, () =>
      store.blobs.putStream(uploads.capped(requestChunks(c.req.raw)), expected),
    );
    return blobCreated(c, name, expected);
  }
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
    await chargedPut(store, name, digest, charge, session.size, () =>
      store.blobs.putFile(session.file, digest),
    );
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
