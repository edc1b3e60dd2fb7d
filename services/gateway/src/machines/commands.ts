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
import type { Catalog, MachineRecord } from "./catalog.js";

export interface CreateMachineInput {
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
  ) {
    this.appsHandler = new CommandHandler(store, appsStream, appDecider);
    this.machinesHandler = new CommandHandler(store, machinesStream, machineDecider);
  }

  async createApp(name: string, orgSlug: string, network?: string): Promise<void> {
    await handleThenWait(
      this.appsHandler,
      this.catalog.apps,
      name,
      { type: "CreateApp", name, orgSlug, ...(network ? { network } : {}) },
      { commandId: `create-app-${name}-${randomBytes(4).toString("hex")}` },
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
   */
  async createMachine(app: string, input: CreateMachineInput): Promise<MachineRecord> {
    if (!this.catalog.app(app)) throw new DomainError(`app ${app} not found`, "not_found");
    const machineId = newMachineId();
    await placeThenCreateMachine(
      { nc: this.nc, machines: this.machinesHandler, view: this.catalog.machines },
      {
        app,
        machineId,
        region: input.region || this.defaultRegion,
        config: input.config,
        ...(input.name ? { name: input.name } : {}),
        skipLaunch: input.skipLaunch ?? false,
      },
    );
    return this.catalog.machine(machineAggregateId(app, machineId)) as MachineRecord;
  }

  /** Runs a user's command on a machine (the lease guard's time is now) and returns the machine after it. */
  async machine(
    app: string,
    machineId: string,
    command:
      | DistributiveOmit<MachineUserCommand, "nowMs">
      | DistributiveOmit<Extract<MachineCommand, { type: "AcquireLease" | "ReleaseLease" }>, "nowMs">,
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
