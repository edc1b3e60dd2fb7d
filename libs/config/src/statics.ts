import { createHash } from "node:crypto";

/** One `[[statics]]` entry as a machine's config carries it (Fly's api.Static). */
export interface MachineStatic {
  guest_path: string;
  url_prefix: string;
  tigris_bucket?: string | undefined;
  index_document?: string | undefined;
}

/** The largest file the proxy serves from an image's statics; a bigger one is left out with a warning. */
export const STATICS_MAX_FILE_BYTES = 16 * 2 ** 20;
/** The most bytes of statics kept per release; files past it are left out with a warning. */
export const STATICS_MAX_TOTAL_BYTES = 128 * 2 ** 20;
/** The most files kept per release. */
export const STATICS_MAX_FILES = 10_000;

/**
 * The statics of a machine config (image and `statics`), or undefined when it has none the proxy
 * can serve from an image: entries with a tigris_bucket are served from the bucket on Fly, which
 * Hangar does not reach, and are left out.
 */
export function imageStaticsOf(config: unknown): { image: string; statics: MachineStatic[] } | undefined {
  if (typeof config !== "object" || config === null) return undefined;
  const { image, statics } = config as { image?: unknown; statics?: unknown };
  if (typeof image !== "string" || !Array.isArray(statics)) return undefined;
  const served = statics.filter(
    (s): s is MachineStatic =>
      typeof s === "object" &&
      s !== null &&
      typeof s.guest_path === "string" &&
      typeof s.url_prefix === "string" &&
      (s.tigris_bucket === undefined || s.tigris_bucket === null || s.tigris_bucket === ""),
  );
  if (served.length === 0) return undefined;
  return {
    image,
    statics: served.map((s) => ({
      guest_path: s.guest_path,
      url_prefix: s.url_prefix,
      ...(typeof s.index_document === "string" && s.index_document !== ""
        ? { index_document: s.index_document }
        : {}),
    })),
  };
}

/**
 * The id of the files one image gives one list of statics: what the extractor stores them under
 * and the proxy reads them by. The same image and statics always give the same id.
 */
export function staticsSetId(image: string, statics: readonly MachineStatic[]): string {
  const canonical = JSON.stringify([
    image,
    statics.map((s) => [s.guest_path, s.url_prefix, s.index_document ?? ""]),
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 32);
}

/**
 * A guest path as the path components of a layer entry (`/app/public/` is `["app", "public"]`), or
 * undefined for one that is not absolute or climbs with `..`.
 */
export function guestPathParts(guestPath: string): string[] | undefined {
  if (!guestPath.startsWith("/")) return undefined;
  const parts = guestPath.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return undefined;
  return parts;
}

/** Where a request path leads among an app's statics. */
export type StaticLookup =
  /** No url_prefix matches: the request goes to the machines. */
  | { kind: "none" }
  /** The path is malformed or climbs out of the static folder (`..`, `%2e%2e`, an encoded `/`). */
  | { kind: "refused"; reason: string }
  /** The file `path` (relative to the guest_path, "" for the folder itself) of statics[index]. */
  | { kind: "file"; index: number; path: string; indexDocument: string | undefined };

/**
 * Maps a request's path (as sent, query included or not) to a file under one of `statics`, the
 * longest matching url_prefix first. Each segment is percent-decoded on its own, so an encoded `/`
 * or `..` cannot make a segment that climbs; `.` and empty segments are dropped.
 */
export function lookupStatic(statics: readonly MachineStatic[], rawPath: string): StaticLookup {
  const q = rawPath.indexOf("?");
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  const order = statics
    .map((s, index) => ({ index, prefix: normalizePrefix(s.url_prefix), s }))
    .sort((a, b) => b.prefix.length - a.prefix.length);
  for (const { index, prefix, s } of order) {
    const rest =
      prefix === "/"
        ? path.slice(1)
        : path === prefix
          ? ""
          : path.startsWith(`${prefix}/`)
            ? path.slice(prefix.length + 1)
            : undefined;
    if (rest === undefined) continue;
    const parts: string[] = [];
    for (const raw of rest.split("/")) {
      let segment: string;
      try {
        segment = decodeURIComponent(raw);
      } catch {
        return { kind: "refused", reason: "the path has a malformed percent-encoding" };
      }
      if (segment.includes("/") || segment.includes("\\") || segment.includes("\0")) {
        return { kind: "refused", reason: "a path segment holds an encoded slash, backslash or NUL" };
      }
      if (segment === "..")
        return { kind: "refused", reason: 'the path climbs out of the static folder with ".."' };
      if (segment === "" || segment === ".") continue;
      parts.push(segment);
    }
    return { kind: "file", index, path: parts.join("/"), indexDocument: s.index_document };
  }
  return { kind: "none" };
}

/** A url_prefix with one leading slash and no trailing one ("/" stays "/"). */
function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, "");
  if (trimmed === "") return "/";
  return trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  map: "application/json",
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  xml: "application/xml",
  csv: "text/csv; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  ico: "image/x-icon",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  otf: "font/otf",
  wasm: "application/wasm",
  pdf: "application/pdf",
  zip: "application/zip",
  gz: "application/gzip",
  mp4: "video/mp4",
  webm: "video/webm",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  wav: "audio/wav",
  webmanifest: "application/manifest+json",
};

/** The Content-Type of a file by its extension; application/octet-stream when unknown. */
export function staticContentType(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return "application/octet-stream";
  return CONTENT_TYPES[name.slice(dot + 1).toLowerCase()] ?? "application/octet-stream";
}

/** The Object Store bucket of the files the proxy serves for `[[statics]]`: the builder writes, the proxy reads. */
export const STATICS_BUCKET = "hangar-statics";

/** One file of a statics set: its content's object is named by its SHA-256. */
export interface StaticFileEntry {
  sha256: string;
  size: number;
}

/**
 * What one image gives one list of statics, written last (after every file) under
 * `staticsManifestName`: its presence says the set is complete.
 */
export interface StaticsManifest {
  image: string;
  /** The image manifest's digest the files were read from. */
  digest: string;
  statics: MachineStatic[];
  /** Per entry of `statics`, its files by path relative to its guest_path. */
  files: Array<Record<string, StaticFileEntry>>;
  /** Files left out (symlinks, over the limits), as the builder logged them. */
  warnings: string[];
}

/** The object name of a statics set's manifest. */
export const staticsManifestName = (app: string, setId: string): string => `${app}/${setId}/manifest.json`;

/** The object name of a file's content in a statics set. */
export const staticsFileName = (app: string, setId: string, sha256: string): string =>
  `${app}/${setId}/sha256/${sha256}`;
