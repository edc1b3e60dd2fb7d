import { randomBytes } from "node:crypto";

/** Fly's machine ids: 14 hex digits. */
export function newMachineId(): string {
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
