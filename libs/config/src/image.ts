import { posix } from "node:path";
import { z } from "zod";

const DIR_PREFIX = "dir:";

/** The folder of a `dir:<absolute path>` image (a folder run as it is), or undefined for an OCI reference. */
export function dirImagePath(image: string): string | undefined {
  return image.startsWith(DIR_PREFIX) ? image.slice(DIR_PREFIX.length) : undefined;
}

/** A machine image: an OCI reference ("registry/repo:tag") or `dir:<absolute path>`. */
export const ImageSchema = z
  .string()
  .regex(/^\S+$/, "expected a non-empty image reference without whitespace")
  .refine((image) => {
    const dir = dirImagePath(image);
    return dir === undefined || posix.isAbsolute(dir);
  }, "expected an absolute path after dir:");
