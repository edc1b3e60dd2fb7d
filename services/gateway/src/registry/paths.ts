import { type Digest, isDigest, isRepositoryName } from "@hangar/oci";
import { RegistryError } from "./errors.js";

/** A /v2 request path, understood. Repository names may hold slashes, so hono's params cannot split them. */
export type RegistryPath =
  | { kind: "base" }
  | { kind: "tags"; name: string }
  | { kind: "manifest"; name: string; reference: string }
  | { kind: "blob"; name: string; digest: Digest }
  | { kind: "uploads"; name: string }
  | { kind: "upload"; name: string; id: string };

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => RegistryPath]> = [
  [/^\/?$/, () => ({ kind: "base" })],
  [/^\/(.+)\/tags\/list$/, (m) => ({ kind: "tags", name: m[1] as string })],
  [
    /^\/(.+)\/manifests\/([^/]+)$/,
    (m) => ({ kind: "manifest", name: m[1] as string, reference: m[2] as string }),
  ],
  [/^\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: "uploads", name: m[1] as string })],
  [
    /^\/(.+)\/blobs\/uploads\/([^/]+)$/,
    (m) => ({ kind: "upload", name: m[1] as string, id: m[2] as string }),
  ],
  [/^\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: "blob", name: m[1] as string, digest: m[2] as Digest })],
];

/** Parses the part of a path after `/v2`; undefined when no endpoint has that shape. Throws on bad names and digests. */
export function parseRegistryPath(path: string): RegistryPath | undefined {
  for (const [pattern, make] of PATTERNS) {
    const m = pattern.exec(path);
    if (!m) continue;
    const parsed = make(m);
    if ("name" in parsed && !isRepositoryName(parsed.name)) {
      throw new RegistryError("NAME_INVALID", `invalid repository name "${parsed.name}"`);
    }
    if (parsed.kind === "blob" && !isDigest(parsed.digest)) {
      throw new RegistryError("DIGEST_INVALID", `"${parsed.digest}" is not a sha256 digest`);
    }
    return parsed;
  }
  return undefined;
}
