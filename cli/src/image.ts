import { statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

/**
 * Turns `hangar machine run`'s image argument into `config.image`: `dir:<path>`, a path that looks like
 * one (`.`, `..`, `./x`, `/x`, `~/x`) or an existing folder without `:`/`@` becomes `dir:<absolute path>`;
 * anything else is an image reference and passes through unchanged.
 */
export function resolveImage(arg: string, cwd: string = process.cwd()): string {
  if (arg.startsWith("dir:")) return `dir:${resolve(cwd, expandHome(arg.slice(4)))}`;
  const looksLikePath = /^(\.{1,2}|~)(\/|$)/.test(arg) || isAbsolute(arg);
  const absolute = resolve(cwd, expandHome(arg));
  if (looksLikePath) {
    if (!isDirectory(absolute)) throw new Error(`${arg} is not a folder`);
    return `dir:${absolute}`;
  }
  // `name:tag` and `name@digest` are references even if a folder of that name exists.
  if (!/[:@]/.test(arg) && isDirectory(absolute)) return `dir:${absolute}`;
  return arg;
}
