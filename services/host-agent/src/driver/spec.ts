import { stat } from "node:fs/promises";
import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import { guestPathProblem } from "@hangar/config";
import { isVolumeId } from "@hangar/domain";
import { InvalidMachineSpecError } from "./errors.js";
import { isValidMachineId } from "./state.js";
import type { MachineRunSpec } from "./types.js";

/** Rejects a spec the driver cannot run, before anything is allocated or spawned. */
export async function validateRunSpec(spec: MachineRunSpec): Promise<void> {
  if (!isValidMachineId(spec.machineId)) {
    throw new InvalidMachineSpecError(
      `machine id ${JSON.stringify(spec.machineId)} is not [A-Za-z0-9_-]{1,64}`,
    );
  }
  if (!Array.isArray(spec.cmd) || spec.cmd.length === 0 || !spec.cmd.every(isArgvString)) {
    throw new InvalidMachineSpecError("cmd must be a non-empty list of strings without NUL");
  }
  for (const [name, value] of [...Object.entries(spec.env), ...Object.entries(spec.secretEnv ?? {})]) {
    // Only the name in the message: a value may be a secret.
    if (name === "" || name.includes("=") || !isArgvString(name) || !isArgvString(value)) {
      throw new InvalidMachineSpecError(`env variable ${JSON.stringify(name)}`);
    }
  }
  if (spec.privateIp !== undefined && isIP(spec.privateIp) === 0) {
    throw new InvalidMachineSpecError(`private ip ${JSON.stringify(spec.privateIp)}`);
  }
  if (spec.port !== undefined && !(Number.isInteger(spec.port) && spec.port > 0 && spec.port < 65536)) {
    throw new InvalidMachineSpecError(`port ${spec.port}`);
  }
  for (const { volume, path } of spec.volumes ?? []) {
    if (!isVolumeId(volume))
      throw new InvalidMachineSpecError(`volume ${JSON.stringify(volume)} is not a volume id`);
    if (!isAbsolute(path) || path === "/" || path.includes("\0"))
      throw new InvalidMachineSpecError(
        `volume mount path ${JSON.stringify(path)}: an absolute path other than /`,
      );
  }
  for (const { guestPath, mode } of spec.files ?? []) {
    const problem = guestPathProblem(guestPath);
    if (problem) throw new InvalidMachineSpecError(`file ${JSON.stringify(guestPath)}: ${problem}`);
    if (!(Number.isInteger(mode) && mode >= 0 && mode <= 0o777))
      throw new InvalidMachineSpecError(`file ${guestPath}: mode ${mode} is not permission bits`);
  }
  const { guest } = spec;
  if (
    guest &&
    !(
      Number.isInteger(guest.cpus) &&
      guest.cpus > 0 &&
      Number.isInteger(guest.memoryMb) &&
      guest.memoryMb > 0 &&
      (guest.cpuKind === "shared" || guest.cpuKind === "performance")
    )
  ) {
    throw new InvalidMachineSpecError(`guest ${JSON.stringify(guest)}: whole cpus and memory_mb above 0`);
  }
  if (spec.sandbox) {
    // cwd is inside the image's root filesystem, which is mounted only at launch.
    if (!isAbsolute(spec.cwd))
      throw new InvalidMachineSpecError(`cwd ${JSON.stringify(spec.cwd)} is not absolute`);
    const { lowers } = spec.sandbox;
    if (lowers.length === 0 || !lowers.every((l) => isAbsolute(l) && !l.includes(":") && !l.includes(",")))
      throw new InvalidMachineSpecError("sandbox lowers must be absolute layer folders without ':' or ','");
    return;
  }
  // Checked here because spawn() reports a missing cwd as a missing executable ("spawn perl ENOENT").
  const cwd = await stat(spec.cwd).catch(() => null);
  if (!cwd?.isDirectory())
    throw new InvalidMachineSpecError(`cwd ${JSON.stringify(spec.cwd)} is not a folder`);
}

function isArgvString(value: unknown): value is string {
  return typeof value === "string" && !value.includes("\0");
}
