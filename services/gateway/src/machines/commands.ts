import { randomBytes } from "node:crypto";
import { GUEST_DEFAULTS } from "@hangar/config";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  defaultMachineName,
  type LeaseGuard,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
  newInstanceId,
  newMachineId,
} from "@hangar/domain";
import { CommandHandler, DomainError, type EventStore } from "@hangar/eventstore";
import { type PlaceRequest, type PlaceResult, sendCommand, subjects } from "@hangar/service";
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
    const res = await this.appsHandler.handle(
      name,
      { type: "CreateApp", name, orgSlug, ...(network ? { network } : {}) },
      { commandId: `create-app-${name}-${randomBytes(4).toString("hex")}` },
    );
    await this.catalog.apps.waitForSeq(res.seq);
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
    const res = await this.appsHandler.handle(
      name,
      { type: "DestroyApp" },
      { commandId: `destroy-app-${name}-${randomBytes(4).toString("hex")}` },
    );
    await this.catalog.apps.waitForSeq(res.seq);
  }

  /**
   * Creates a machine: placement reserves room on a host first (so a machine that does not fit is
   * refused before anything exists), then one decision records the machine and its start request.
   */
  async createMachine(app: string, input: CreateMachineInput): Promise<MachineRecord> {
    if (!this.catalog.app(app)) throw new DomainError(`app ${app} not found`, "not_found");
    const machineId = newMachineId();
    const region = input.region || this.defaultRegion;
    const placed = await sendCommand<PlaceRequest, PlaceResult>(this.nc, subjects.place, {
      machine_id: machineId,
      app,
      region,
      cpus: input.config.guest?.cpus ?? GUEST_DEFAULTS.cpus,
      memory_mb: input.config.guest?.memory_mb ?? GUEST_DEFAULTS.memory_mb,
    });
    const instanceId = newInstanceId();
    const aggregateId = machineAggregateId(app, machineId);
    const res = await this.machinesHandler.handle(
      aggregateId,
      {
        type: "CreateMachine",
        machineId,
        app,
        name: input.name || defaultMachineName(app, machineId),
        region: placed.region,
        instanceId,
        configJson: JSON.stringify(input.config),
        skipLaunch: input.skipLaunch ?? false,
        hostId: placed.host_id,
      },
      { commandId: `create-${machineId}` },
    );
    await this.catalog.machines.waitForSeq(res.seq);
    return this.catalog.machine(aggregateId) as MachineRecord;
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
    const res = await this.machinesHandler.handle(
      aggregateId,
      { ...command, nowMs: Date.now() } as MachineCommand,
      {
        commandId: `${commandId}-${machineId}`,
      },
    );
    await this.catalog.machines.waitForSeq(res.seq);
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
