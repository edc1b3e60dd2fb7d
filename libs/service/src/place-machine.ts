import { GUEST_DEFAULTS } from "@hangar/config";
import {
  defaultMachineName,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  newInstanceId,
} from "@hangar/domain";
import { type CommandHandler, type CommandResult, DomainError } from "@hangar/eventstore";
import type { NatsConnection } from "@nats-io/transport-node";
import { sendCommand } from "./bus.js";
import { handleThenWait, type SequencedView } from "./read-your-writes.js";
import { type PlaceRequest, type PlaceResult, subjects } from "./subjects.js";

/** A machine to create: its id is chosen by the caller, so asking again is idempotent. */
export interface NewMachine {
  app: string;
  machineId: string;
  region: string;
  /** The machine config as the API holds it; its guest size is what placement reserves. */
  config: {
    guest?: {
      cpus?: number;
      memory_mb?: number;
      gpus?: number | null;
      gpu_kind?: string | null;
      host_dedication_id?: string | null;
    };
  } & Record<string, unknown>;
  /** Default: Fly's generated name for the machine id. */
  name?: string;
  skipLaunch?: boolean;
  /**
   * The host of the machine's volume: placement puts it there or refuses, saying why. Required when
   * the config mounts a volume (the caller attached it first and knows its host).
   */
  hostId?: string;
}

/** Where a machine is created from: the bus to placement, the MACHINES handler and the caller's view. */
export interface MachineCreator {
  nc: NatsConnection;
  machines: CommandHandler<MachineState, MachineCommand, MachineEvent>;
  view: SequencedView;
}

/** What placing and creating did. */
export interface PlacedMachine {
  placed: PlaceResult;
  created: CommandResult<MachineState, MachineEvent>;
}

/**
 * Reserves room for a machine through placement, then records `CreateMachine` on the host it got and
 * waits until `view` shows it. Placement refuses before anything exists when nothing fits; placing
 * the same machine id again gets the host it already holds, and the command id `create-<machine id>`
 * makes a repeated create append nothing, so a caller that died half-way can simply ask again.
 * A config that mounts a volume is refused (`failed_precondition`, nothing placed) unless the caller
 * gives the volume's host: a volume attaches to one machine, so a copied config (a clone) must not
 * create a second machine on it.
 */
export async function placeThenCreateMachine(
  creator: MachineCreator,
  machine: NewMachine,
  hooks: { beforeCreate?(placed: PlaceResult): Promise<void> | void } = {},
): Promise<PlacedMachine> {
  const { mounts } = machine.config as { mounts?: unknown };
  if (Array.isArray(mounts) && mounts.length > 0 && !machine.hostId)
    throw new DomainError(
      `machine ${machine.machineId} mounts a volume but no volume host was given: a machine on a volume is created only with its attached volume, never cloned`,
      "failed_precondition",
    );
  const placed = await sendCommand<PlaceRequest, PlaceResult>(creator.nc, subjects.place, {
    machine_id: machine.machineId,
    app: machine.app,
    region: machine.region,
    cpus: machine.config.guest?.cpus ?? GUEST_DEFAULTS.cpus,
    memory_mb: machine.config.guest?.memory_mb ?? GUEST_DEFAULTS.memory_mb,
    ...gpusOf(machine.config.guest),
    ...(machine.hostId ? { host_id: machine.hostId } : {}),
    ...(machine.config.guest?.host_dedication_id
      ? { host_dedication_id: machine.config.guest.host_dedication_id }
      : {}),
  });
  await hooks.beforeCreate?.(placed);
  const created = await handleThenWait(
    creator.machines,
    creator.view,
    machineAggregateId(machine.app, machine.machineId),
    {
      type: "CreateMachine",
      machineId: machine.machineId,
      app: machine.app,
      name: machine.name || defaultMachineName(machine.app, machine.machineId),
      region: placed.region,
      instanceId: newInstanceId(),
      configJson: JSON.stringify(machine.config),
      skipLaunch: machine.skipLaunch ?? false,
      hostId: placed.host_id,
    },
    { commandId: `create-${machine.machineId}` },
  );
  return { placed, created };
}

/** The GPUs a guest asks for: `gpus`, or one when only `gpu_kind` is given (as Fly reads a guest). */
export function gpusOf(guest: { gpus?: number | null; gpu_kind?: string | null } | undefined): {
  gpus?: number;
  gpu_kind?: string;
} {
  const gpus = guest?.gpus ?? (guest?.gpu_kind ? 1 : 0);
  if (gpus <= 0) return {};
  return { gpus, ...(guest?.gpu_kind ? { gpu_kind: guest.gpu_kind } : {}) };
}
