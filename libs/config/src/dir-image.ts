// `dir:<folder>` images run a folder of the host as a machine: a development feature, off unless
// the platform lists the folders it may run (HANGAR_DIR_IMAGE_ROOTS). The rules here are lexical,
// for whoever cannot see the host's disk (the gateway); the host agent applies them again after
// resolving symlinks.
import { posix } from "node:path";
import { z } from "zod";
import { dirImagePath } from "./image.js";

/** The refusal of any `dir:` image while no roots are configured: it says how to enable them. */
export const DIR_IMAGES_OFF =
  "dir: images are off: set HANGAR_DIR_IMAGE_ROOTS=<folder>[:<folder>...] on the gateway and host agents to run folders under those roots (development only)";

/** The parts of a machine config that name host paths when the image is `dir:`. */
export interface DirImageConfig {
  image: string;
  init?: {
    exec?: readonly string[] | null;
    entrypoint?: readonly string[] | null;
    cmd?: readonly string[] | null;
  } | null;
}

/** The init fields whose first word is the program a `dir:` machine runs. */
export const INIT_PROGRAM_FIELDS = ["exec", "entrypoint", "cmd"] as const;

/** A path named by init: `init.exec` and its first word. */
export interface InitProgram {
  field: `init.${(typeof INIT_PROGRAM_FIELDS)[number]}`;
  path: string;
}

const hasDotDot = (path: string) => path.split("/").includes("..");

/** An absolute path without `.`, repeated or trailing slashes. */
function normalFolder(path: string): string {
  return posix.normalize(path).replace(/(.)\/+$/, "$1");
}

/** Whether `path` is `root` or under it; both normalised absolute paths. */
export function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/**
 * HANGAR_DIR_IMAGE_ROOTS: colon-separated absolute folders, normalised; unset or empty means `dir:`
 * images are off. `/` is refused: it would allow running any folder and binary of the host.
 */
export const DirImageRootsSchema = z
  .string()
  .optional()
  .transform((value, ctx) => {
    const roots = (value ?? "").split(":").filter((root) => root !== "");
    for (const root of roots) {
      if (!posix.isAbsolute(root) || hasDotDot(root)) {
        ctx.addIssue({ code: "custom", message: `${root}: each root must be an absolute path without ..` });
      } else if (normalFolder(root) === "/") {
        ctx.addIssue({ code: "custom", message: "/ cannot be a dir: image root: list the folders to run" });
      }
    }
    return roots.map(normalFolder);
  });

/**
 * The programs a `dir:` machine's init names by path (absolute, or relative to the folder when it
 * holds a `/`), as absolute paths; bare names (node, npm) are looked up inside the machine.
 */
export function initPrograms(config: DirImageConfig, folder: string): InitProgram[] {
  const programs: InitProgram[] = [];
  for (const key of INIT_PROGRAM_FIELDS) {
    const first = config.init?.[key]?.[0];
    if (first?.includes("/")) programs.push({ field: `init.${key}`, path: posix.resolve(folder, first) });
  }
  return programs;
}

/** The refusal of a program outside the roots. */
export function programOutsideRoots(program: InitProgram, shown: string): string {
  return `${program.field} ${shown} is outside HANGAR_DIR_IMAGE_ROOTS: a dir: machine runs programs by path only from under those folders (a bare name such as node is looked up inside the machine)`;
}

/** The refusal of a `dir:` folder outside the roots; `realPath` when a symlink led there. */
export function folderOutsideRoots(image: string, realPath?: string): string {
  const real = realPath === undefined ? "" : ` (its real path is ${realPath})`;
  return `${image} is not under HANGAR_DIR_IMAGE_ROOTS${real}: add its folder there on the gateway and host agents to run it (development only)`;
}

/**
 * Why this machine config may not run under `roots` (lexically: `..` refused, paths normalised),
 * or undefined when it may. Configs of OCI images always may.
 */
export function dirImageRefusal(config: DirImageConfig, roots: readonly string[]): string | undefined {
  const raw = dirImagePath(config.image);
  if (raw === undefined) return undefined;
  if (roots.length === 0) return DIR_IMAGES_OFF;
  const words = [raw, ...INIT_PROGRAM_FIELDS.map((key) => config.init?.[key]?.[0] ?? "")];
  if (words.some(hasDotDot)) return `${config.image}: a dir: image and its init programs may not use ..`;
  const folder = normalFolder(raw);
  if (folder === "/")
    return "dir:/ is refused: a dir: image runs a folder under HANGAR_DIR_IMAGE_ROOTS, never the host's root";
  if (!roots.some((root) => isUnder(folder, root))) return folderOutsideRoots(config.image);
  for (const program of initPrograms(config, folder)) {
    if (!roots.some((root) => isUnder(program.path, root))) return programOutsideRoots(program, program.path);
  }
  return undefined;
}
