import { randomBytes } from "node:crypto";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type LeaseGuard,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
  newMachineId,
} from "@hangar/domain";
import { CommandHandler, DomainError, type EventStore } from "@hangar/eventstore";
import { handleThenWait, placeThenCreateMachine, sendCommand, subjects } from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  keepUpdateMount,
  type MachineVolumes,
  type MountInput,
  resolveCreateMount,
  type WithMounts,
} from "../volumes/mounts.js";
import type { Catalog, MachineRecord } from "./catalog.js";

export interface CreateMachineInput {
  /** The machine's id when the caller derives it (an Idempotency-Key); a fresh one otherwise. */
  machineId?: string;
  name?: string;
  region?: string;
  config: { guest?: { cpus?: number; memory_mb?: number } } & Record<string, unknown>;
  skipLaunch?: boolean;
}

type MachineUserCommand = Extract<MachineCommand, LeaseGuard>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * The gateway's write side: API requests become commands on the app and machine aggregates, and the
 * result is read back from the catalog once the catalog has folded it (read your own writes).
 */
export class MachineCommands {
  private readonly appsHandler: CommandHandler<AppState, AppCommand, AppEvent>;
  private readonly machinesHandler: CommandHandler<MachineState, MachineCommand, MachineEvent>;

  constructor(
    private readonly nc: NatsConnection,
    store: EventStore,
    private readonly catalog: Catalog,
    private readonly defaultRegion: string,
    private readonly volumes: MachineVolumes,
  ) {
    this.appsHandler = new CommandHandler(store, appsStream, appDecider);
    this.machinesHandler = new CommandHandler(store, machinesStream, machineDecider);
  }

  /** `commandId` makes a repeat of the same create a success (an Idempotency-Key's); fresh by default. */
  async createApp(name: string, orgSlug: string, network?: string, commandId?: string): Promise<void> {
    await handleThenWait(
      this.appsHandler,
      this.catalog.apps,
      name,
      { type: "CreateApp", name, orgSlug, ...(network ? { network } : {}) },
      { commandId: commandId ?? `create-app-${name}-${randomBytes(4).toString("hex")}` },
    );
  }

  /** Destroys the app's machines (forcefully), then the app. */
  async destroyApp(name: string): Promise<void> {
    if (!this.catalog.app(name)) throw new DomainError(`app ${name} not found`, "not_found");
    for (const m of this.catalog.machinesOf(name)) {
      if (m.state.status === "destroyed" || m.state.status === "destroying") continue;
      await this.machine(
        name,
        m.state.machineId,
        { type: "DestroyMachine", force: true },
        `destroy-app-${name}`,
      );
    }
    await handleThenWait(
      this.appsHandler,
      this.catalog.apps,
      name,
      { type: "DestroyApp" },
      { commandId: `destroy-app-${name}-${randomBytes(4).toString("hex")}` },
    );
  }

  /**
   * Creates a machine: placement reserves room on a host first (so a machine that does not fit is
   * refused before anything exists), then one decision records the machine and its start request.
   * A machine that mounts a volume gets it attached before placement (a volume another machine has
   * is a 409 before anything is placed), is placed on the volume's host, and gives the volume back
   * when the create fails.
   */
  async createMachine(app: string, input: CreateMachineInput): Promise<MachineRecord> {
    if (!this.catalog.app(app)) throw new DomainError(`app ${app} not found`, "not_found");
    const machineId = input.machineId ?? newMachineId();
    // A keyed create that an earlier attempt already made (its gateway died before answering).
    const made = this.catalog.machine(machineAggregateId(app, machineId));
    if (made) return made;
    // A volume already attached to this machine id is this create's own: a keyed create resumed after
    // its earlier attempt attached it (attaching again is a no-op in the volume's decider).
    const volumes = this.volumes
      .volumesOf(app)
      .map((v) => (v.attached_machine_id === machineId ? { ...v, attached_machine_id: null } : v));
    const mount = resolveCreateMount(app, volumes, input.config as WithMounts, {
      asked: input.region || undefined,
      fallback: this.defaultRegion,
    });
    if (mount) await this.volumes.attach(app, mount.volume.id, machineId);
    try {
      await placeThenCreateMachine(
        { nc: this.nc, machines: this.machinesHandler, view: this.catalog.machines },
        {
          app,
          machineId,
          region: mount?.region ?? (input.region || this.defaultRegion),
          config: (mount?.config ?? input.config) as CreateMachineInput["config"],
          ...(input.name ? { name: input.name } : {}),
          skipLaunch: input.skipLaunch ?? false,
          ...(mount ? { hostId: mount.volume.host_id } : {}),
        },
      );
    } catch (err) {
      // The refusal is the answer; a detach that fails too leaves the volume attached to a machine
      // that never existed, which the caller can see on the volume (attached_machine_id).
      if (mount) await this.volumes.detach(app, mount.volume.id, machineId).catch(() => undefined);
      throw err;
    }
    return this.catalog.machine(machineAggregateId(app, machineId)) as MachineRecord;
  }

  /**
   * The config an update of `current` records: the machine keeps the volume attached to it
   * (volumes/mounts.ts says which mounts an update may send).
   */
  keepVolume<C extends object>(app: string, current: MachineRecord, config: C): C {
    const id = current.state.machineId;
    const [mount] = ((JSON.parse(current.state.configJson || "{}") as WithMounts).mounts ??
      []) as MountInput[];
    const volume = mount?.volume
      ? this.volumes.volumesOf(app).find((v) => v.id === mount.volume && v.attached_machine_id === id)
      : undefined;
    return keepUpdateMount(id, volume && mount ? { volume, mount } : undefined, config as C & WithMounts);
  }

  /** Runs a user's command on a machine (the lease guard's time is now) and returns the machine after it. */
  async machine(
    app: string,
    machineId: string,
    command:
      | DistributiveOmit<MachineUserCommand, "nowMs">
      | DistributiveOmit<Extract<MachineCommand, { type: "AcquireLease" | "ReleaseLease" }>, "nowMs">
      | Extract<MachineCommand, { type: "SetMachineMetadata" | "DeleteMachineMetadata" }>,
    commandId = `${command.type}-${randomBytes(6).toString("hex")}`,
  ): Promise<MachineRecord> {
    const aggregateId = machineAggregateId(app, machineId);
    if (!this.catalog.machine(aggregateId))
      throw new DomainError(`machine ${machineId} not found in app ${app}`, "not_found");
    await handleThenWait(
      this.machinesHandler,
      this.catalog.machines,
      aggregateId,
      { ...command, nowMs: Date.now() } as MachineCommand,
      { commandId: `${commandId}-${machineId}` },
    );
    return this.catalog.machine(aggregateId) as MachineRecord;
  }

  /** Sends a signal to a running machine through its host agent. */
  async signal(app: string, machineId: string, signal: string): Promise<void> {
    const m = this.catalog.machine(machineAggregateId(app, machineId));
    if (!m || m.state.status === "destroyed")
      throw new DomainError(`machine ${machineId} not found in app ${app}`, "not_found");
    if (m.state.status !== "started" && m.state.status !== "suspended")
      throw new DomainError(
        `machine ${machineId} is ${m.state.status}: only a running machine takes signals`,
        "failed_precondition",
      );
    await sendCommand(this.nc, subjects.hostCommand(m.state.hostId, "signal"), {
      app,
      machine_id: machineId,
      signal,
    });
  }
}
