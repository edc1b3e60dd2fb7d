import { posix } from "node:path";
import { type BuildFailureDetails, CopySourceError } from "./errors.js";

/** True when a source is a URL, which ADD refuses here (builds have no network by default). */
export function isUrl(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || /^git@/.test(source);
}

/**
 * A COPY source as a path relative to its root ("." for the root itself): a leading slash means the
 * root too, and `..` may not climb out of it.
 */
export function cleanSource(source: string, at: BuildFailureDetails = {}): string {
  const rel = posix.normalize(source.replace(/^\/+/, ""));
  if (rel === ".." || rel.startsWith("../")) {
    throw new CopySourceError(`${source} is outside the build context`, at);
  }
  const out = rel.replace(/\/+$/, "");
  return out === "" ? "." : out;
}

/** True when a path has glob characters (`*`, `?`, `[`) that are not escaped. */
export function hasGlob(path: string): boolean {
  return /(^|[^\\])[*?[]/.test(path);
}

/** Matches one path component against one pattern component, with Go's filepath.Match rules. */
export function matchComponent(pattern: string, name: string): boolean {
  return componentRegExp(pattern).test(name);
}

/**
 * True when a .dockerignore (its text) leaves `path` (relative to the context, with `/`) out, by
 * Docker's rules: `#` comments, a leading `/` ignored, `**` for any number of folders, `!` brings a
 * path back, the last matching line wins, and a line naming a folder names everything inside it.
 */
export function dockerignoreExcludes(ignoreText: string, path: string): boolean {
  const parts = path.split("/");
  let excluded = false;
  for (const raw of ignoreText.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1).trim();
    const pattern = posix.normalize(line.replace(/^\/+/, "")).replace(/\/+$/, "").split("/");
    // The path itself or one of its parent folders.
    const matches = parts.some((_, i) => matchParts(pattern, parts.slice(0, i + 1)));
    if (matches) excluded = !negate;
  }
  return excluded;
}

function matchParts(pattern: string[], parts: string[]): boolean {
  const [head, ...rest] = pattern;
  if (head === undefined) return parts.length === 0;
  if (head === "**") return parts.some((_, i) => matchParts(rest, parts.slice(i))) || matchParts(rest, []);
  const [name, ...others] = parts;
  return name !== undefined && matchComponent(head, name) && matchParts(rest, others);
}

const regexps = new Map<string, RegExp>();

function componentRegExp(pattern: string): RegExp {
  const cached = regexps.get(pattern);
  if (cached) return cached;
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < pattern.length) re += escapeRe(pattern[++i] as string);
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) throw new CopySourceError(`bad pattern ${pattern}: [ without ]`);
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith("^") || body.startsWith("!");
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\]\\]/g, "\\$&")}]`;
      i = end;
    } else re += escapeRe(c);
  }
  const out = new RegExp(`${re}$`, "s");
  regexps.set(pattern, out);
  return out;
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Where one matched source lands. */
export interface Placement {
  /** The source path, relative to its root. */
  from: string;
  /** Absolute path in the image. */
  to: string;
  /** A directory source: its contents go into `to`, not the directory itself. */
  contentsOnly: boolean;
}

/**
 * Docker's destination rules: a directory's contents are copied into the destination; a file goes
 * into the destination when it names a directory (trailing slash, ".", or an existing directory in
 * the image), and otherwise becomes the destination.
 */
export function placeSource(
  source: { path: string; isDir: boolean },
  dest: string,
  destIsDir: boolean,
  destExistsAsDir: boolean,
): Placement {
  if (source.isDir) return { from: source.path, to: dest, contentsOnly: true };
  if (destIsDir || destExistsAsDir) {
    return { from: source.path, to: posix.join(dest, posix.basename(source.path)), contentsOnly: false };
  }
  return { from: source.path, to: dest, contentsOnly: false };
}

/** Archive formats ADD unpacks, told by their first bytes. */
export type ArchiveKind = "tar" | "gzip" | "bzip2" | "xz";

/** The archive format of a file from its first 512 bytes, or undefined when it is no archive ADD unpacks. */
export function archiveKind(head: Uint8Array): ArchiveKind | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a)
    return "xz";
  if (head.length >= 262 && Buffer.from(head.subarray(257, 262)).toString("latin1") === "ustar") return "tar";
  return undefined;
}
