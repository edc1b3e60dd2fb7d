import { digestOf, isDigest, MANIFEST_TYPES } from "@hangar/oci";
import type { Context } from "hono";
import { requestChunks } from "./body.js";
import { RegistryError } from "./errors.js";
import type { RegistryStore } from "./store.js";

/** Manifests are small; anything bigger is not one (the spec suggests clients stay under 4 MiB). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** HEAD/GET /v2/<name>/manifests/<tag or digest>. */
export async function getManifest(
  c: Context,
  store: RegistryStore,
  name: string,
  reference: string,
): Promise<Response> {
  const found = await store.getManifest(name, reference);
  if (found === undefined) {
    throw new RegistryError("MANIFEST_UNKNOWN", `manifest ${name}:${reference} is not in the registry`, {
      name,
      reference,
    });
  }
  const headers = {
    "content-type": found.mediaType,
    "content-length": String(found.bytes.byteLength),
    "docker-content-digest": found.digest,
  };
  if (c.req.method === "HEAD") return c.body(null, 200, headers);
  return c.body(Buffer.from(found.bytes), 200, headers);
}

/** PUT /v2/<name>/manifests/<tag or digest>. */
export async function putManifest(
  c: Context,
  store: RegistryStore,
  name: string,
  reference: string,
): Promise<Response> {
  const mediaType = (c.req.header("content-type") ?? "").split(";")[0]?.trim() ?? "";
  if (!MANIFEST_TYPES.includes(mediaType)) {
    throw new RegistryError(
      "MANIFEST_INVALID",
      `Content-Type must be one of ${MANIFEST_TYPES.join(", ")}; got "${mediaType}"`,
    );
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of requestChunks(c.req.raw)) {
    size += chunk.byteLength;
    if (size > MAX_MANIFEST_BYTES)
      throw new RegistryError("SIZE_INVALID", `manifest is over ${MAX_MANIFEST_BYTES} bytes`);
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  if (isDigest(reference) && digestOf(bytes) !== reference) {
    throw new RegistryError("DIGEST_INVALID", `manifest hashes to ${digestOf(bytes)}, not ${reference}`);
  }
  // A tenant's manifest may name only blobs of its repository, else naming another org's digest
  // would link that org's layer here.
  const digest = await store.putManifest(name, reference, bytes, mediaType, { linkedBlobsOnly: true });
  return c.body(null, 201, {
    location: `/v2/${name}/manifests/${digest}`,
    "docker-content-digest": digest,
    "content-length": "0",
  });
}
