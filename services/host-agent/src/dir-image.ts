// The host agent's check of a `dir:` machine, as defence in depth behind the gateway's: the same
// rules, after resolving symlinks on this host's disk, so a link under an allowed root cannot lead
// the machine to a folder or program outside them.
import { realpath } from "node:fs/promises";
import { isAbsolute } from "node:path";
import {
  type DirImageConfig,
  dirImagePath,
  dirImageRefusal,
  folderOutsideRoots,
  initPrograms,
  isUnder,
  programOutsideRoots,
} from "@hangar/config";

/** A `dir:` machine this host refuses to run; the message says why (and how to enable them). */
export class DirImageRefusedError extends Error {
  override name = "DirImageRefusedError";
  readonly code = "DIR_IMAGE_REFUSED";
}

const realOrUndefined = (path: string) => realpath(path).catch(() => undefined);

/**
 * The real path of the folder a `dir:` machine runs, once the folder and the programs its init
 * names by path are found under `roots` (HANGAR_DIR_IMAGE_ROOTS) after resolving symlinks.
 * Throws DirImageRefusedError otherwise, and for any `dir:` image when `roots` is empty.
 */
export async function admitDirImage(config: DirImageConfig, roots: readonly string[]): Promise<string> {
  const folder = dirImagePath(config.image);
  if (folder === undefined) throw new DirImageRefusedError(`image ${config.image} is not a dir: image`);
  const lexical = dirImageRefusal(config, roots);
  if (lexical !== undefined) throw new DirImageRefusedError(lexical);
  if (!isAbsolute(folder))
    throw new DirImageRefusedError(`image ${config.image}: the folder must be an absolute path`);
  const realFolder = await realOrUndefined(folder);
  if (realFolder === undefined)
    throw new DirImageRefusedError(`image ${config.image}: folder ${folder} does not exist on host`);
  // A root missing on this host allows nothing here.
  const realRoots = (await Promise.all(roots.map(realOrUndefined))).filter((r) => r !== undefined);
  const allowed = (path: string) => realRoots.some((root) => isUnder(path, root));
  if (!allowed(realFolder)) throw new DirImageRefusedError(folderOutsideRoots(config.image, realFolder));
  for (const program of initPrograms(config, realFolder)) {
    const real = await realOrUndefined(program.path);
    if (real === undefined)
      throw new DirImageRefusedError(`${program.field} ${program.path} does not exist on host`);
    if (!allowed(real)) throw new DirImageRefusedError(programOutsideRoots(program, real));
  }
  return realFolder;
}
