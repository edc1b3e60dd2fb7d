import { createHash, randomBytes } from "node:crypto";

/**
 * Fly's machine ids: 14 hex digits; derived from `seed` when given, so a step asked again (a resumed
 * create) names the same machine.
 */
export function newMachineId(seed?: string): string {
  if (seed !== undefined) return createHash("sha256").update(seed).digest("hex").slice(0, 14);
  return randomBytes(7).toString("hex");
}

/** An instance id (Fly's machine version): changes with every config. */
export function newInstanceId(): string {
  return randomBytes(13).toString("hex").toUpperCase();
}

/** The name a machine gets when its creator gives none: the app and the start of its id. */
export function defaultMachineName(app: string, machineId: string): string {
  return `${app}-${machineId.slice(0, 6)}`;
}
