import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type ExistingMachine,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
  type ScalingState,
  scalingDecider,
  scalingStream,
} from "@hangar/domain";
import type { EventStore } from "@hangar/eventstore";
import { AggregateView, type ViewChange } from "@hangar/service";
import type { AppMachine } from "./autoscaler.js";
import type { ScalingView } from "./scaling-log.js";

export type MachinesView = AggregateView<MachineState, MachineCommand, MachineEvent>;
export type AppsView = AggregateView<AppState, AppCommand, AppEvent>;

/** The MACHINES aggregates of each app, when each machine was created (stream order) and last started. */
class MachineIndex {
  readonly byApp = new Map<string, Set<string>>();
  readonly createdSeq = new Map<string, number>();
  readonly startedAtMs = new Map<string, number>();

  apply({ aggregateId, previous, state, events }: ViewChange<MachineState, MachineEvent>): void {
    const started = events.findLast((e) => e.event.type === "MachineStarted");
    if (started) this.startedAtMs.set(aggregateId, started.timeUnixMs);
    if (previous.status !== "absent" || state.status === "absent") return;
    let ids = this.byApp.get(state.app);
    if (!ids) {
      ids = new Set();
      this.byApp.set(state.app, ids);
    }
    ids.add(aggregateId);
    this.createdSeq.set(aggregateId, events.find((e) => e.event.type === "MachineCreated")?.seq ?? 0);
  }
}

/**
 * What the scheduler knows of the platform: the APPS, MACHINES and SCALING streams folded in memory
 * (replayed from the start, then followed live), with the machines indexed by app.
 */
export class Fleet {
  private constructor(
    readonly apps: AppsView,
    readonly machines: MachinesView,
    readonly scaling: ScalingView,
    private readonly index: MachineIndex,
  ) {}

  /** Starts the three views and resolves once each has folded the history that existed at start. */
  static async start(store: EventStore): Promise<Fleet> {
    const index = new MachineIndex();
    const machines = await AggregateView.start(store, machinesStream, machineDecider, {
      onChange: (change) => index.apply(change),
    });
    const apps = await AggregateView.start(store, appsStream, appDecider);
    const scaling = await AggregateView.start(store, scalingStream, scalingDecider);
    await Promise.all([machines.caughtUp, apps.caughtUp, scaling.caughtUp]);
    return new Fleet(apps, machines, scaling, index);
  }

  get live(): boolean {
    return this.apps.live && this.machines.live && this.scaling.live;
  }

  /** Apps that exist (created, not destroyed) and have machines. */
  appNames(): string[] {
    return [...this.index.byApp.keys()].filter((a) => this.appExists(a));
  }

  appExists(app: string): boolean {
    return this.apps.get(app)?.status === "created";
  }

  /** The app's machines, destroyed ones included (the autoscaler filters). */
  machinesOf(app: string): AppMachine[] {
    const out: AppMachine[] = [];
    for (const id of this.index.byApp.get(app) ?? []) {
      const s = this.machines.get(id);
      if (!s || s.status === "absent") continue;
      out.push({
        machineId: s.machineId,
        region: s.region,
        status: s.status,
        cordoned: s.cordoned,
        configJson: s.configJson,
        createdSeq: this.index.createdSeq.get(id) ?? 0,
        startedAtMs: this.index.startedAtMs.get(id) ?? 0,
      });
    }
    return out;
  }

  machine(app: string, machineId: string): ExistingMachine | undefined {
    const s = this.machines.get(machineAggregateId(app, machineId));
    return s && s.status !== "absent" ? s : undefined;
  }

  scalingOf(app: string): ScalingState {
    return this.scaling.get(app) ?? scalingDecider.initialState();
  }

  /** Apps whose SCALING log has an entry (decisions or panic mode). */
  scaledApps(): string[] {
    return [...this.scaling.entries()].map(([app]) => app);
  }

  async stop(): Promise<void> {
    await Promise.all([this.machines.stop(), this.apps.stop(), this.scaling.stop()]);
  }
}
