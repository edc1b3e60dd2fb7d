import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type ExistingMachine,
  type ScalingState,
  scalingDecider,
  scalingStream,
} from "@hangar/domain";
import type { EventStore } from "@hangar/eventstore";
import { AggregateView, MachinesView, VolumesView } from "@hangar/service";
import type { AppMachine } from "./autoscaler.js";
import type { ScalingView } from "./scaling-log.js";

export type AppsView = AggregateView<AppState, AppCommand, AppEvent>;

/**
 * What the scheduler knows of the platform: the APPS and SCALING streams folded in memory and the
 * shared MachinesView and VolumesView (replayed from the start, then followed live). The volumes are
 * the release orchestrator's: a deploy of an app with [mounts] puts new machines on them.
 */
export class Fleet {
  private constructor(
    readonly apps: AppsView,
    readonly machines: MachinesView,
    readonly scaling: ScalingView,
    readonly volumes: VolumesView,
  ) {}

  /** Starts the four views and resolves once each has folded the history that existed at start. */
  static async start(store: EventStore): Promise<Fleet> {
    const started = await Promise.allSettled([
      MachinesView.start(store),
      AggregateView.start(store, appsStream, appDecider),
      AggregateView.start(store, scalingStream, scalingDecider),
      VolumesView.start(store),
    ] as const);
    const [machines, apps, scaling, volumes] = started;
    if (
      machines.status === "fulfilled" &&
      apps.status === "fulfilled" &&
      scaling.status === "fulfilled" &&
      volumes.status === "fulfilled"
    ) {
      const fleet = new Fleet(apps.value, machines.value, scaling.value, volumes.value);
      try {
        await Promise.all([apps.value.caughtUp, scaling.value.caughtUp]);
      } catch (err) {
        await fleet.stop().catch(() => undefined);
        throw err;
      }
      return fleet;
    }
    // A view that did start is stopped again: a failed start leaves no consumer behind.
    await Promise.all(
      started.map((s) => (s.status === "fulfilled" ? s.value.stop().catch(() => undefined) : undefined)),
    );
    throw started.find((s) => s.status === "rejected")?.reason;
  }

  get live(): boolean {
    return this.apps.live && this.machines.live && this.scaling.live && this.volumes.live;
  }

  /** Apps that exist (created, not destroyed) and have machines. */
  appNames(): string[] {
    return this.machines.apps().filter((a) => this.appExists(a));
  }

  appExists(app: string): boolean {
    return this.apps.get(app)?.status === "created";
  }

  /** The app's machines, destroyed ones included (the autoscaler filters). */
  machinesOf(app: string): AppMachine[] {
    return this.machines.ofApp(app).map(({ state, createdSeq, startedAtMs }) => ({
      machineId: state.machineId,
      region: state.region,
      status: state.status,
      cordoned: state.cordoned,
      configJson: state.configJson,
      createdSeq,
      startedAtMs,
    }));
  }

  machine(app: string, machineId: string): ExistingMachine | undefined {
    return this.machines.machine(app, machineId);
  }

  scalingOf(app: string): ScalingState {
    return this.scaling.get(app) ?? scalingDecider.initialState();
  }

  /** Apps whose SCALING log has an entry (decisions or panic mode). */
  scaledApps(): string[] {
    return [...this.scaling.entries()].map(([app]) => app);
  }

  async stop(): Promise<void> {
    await Promise.all([this.machines.stop(), this.apps.stop(), this.scaling.stop(), this.volumes.stop()]);
  }
}
