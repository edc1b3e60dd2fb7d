import { type DirImageConfig, dirImageRefusal } from "@hangar/config";
import { ApiError } from "./errors.js";

/**
 * Refuses (400 invalid_argument) a machine config whose `dir:` image may not run under the
 * configured roots. The gateway may not see the hosts' disks, so the check is lexical; each host
 * agent checks again after resolving symlinks.
 */
export function admitDirImage(config: DirImageConfig, roots: readonly string[]): void {
  const refusal = dirImageRefusal(config, roots);
  if (refusal !== undefined) throw ApiError.of("invalid_argument", refusal);
}
