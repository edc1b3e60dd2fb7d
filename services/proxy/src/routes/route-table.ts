import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import type { EventStore } from "@hangar/eventstore";
import { AggregateView } from "@hangar/service";
import { isRoutable } from "./routable.js";

/** A machine the proxy may send requests to. */
export interface RouteBackend {
  machineId: string;
  address: string;
  port: number;
  region: string;
}

/** An app the proxy knows, with the machines that can serve it now. */
export interface AppRoute {
  app: string;
  backends: RouteBackend[];
}

/**
 * The proxy's routing table, rebuilt from the APPS and MACHINES streams at start and kept current
 * from their live tail: an app's backends are its started, uncordoned machines whose checks are not
 * critical. Lookups are a map read; the backend list of an app is rebuilt only when one of its machines changes.
 */
export class StreamRouteTable {
  private readonly routes = new Map<string, AppRoute>();
  private readonly dirty = new Set<string>();

  private constructor(
    private readonly apps: AggregateView<AppState, AppCommand, AppEvent>,
    private readonly machines: AggregateView<MachineState, MachineCommand, MachineEvent>,
    private readonly machinesByApp: Map<string, Set<string>>,
  ) {}

  static async start(store: EventStore): Promise<StreamRouteTable> {
    const machinesByApp = new Map<string, Set<string>>();
    let table: StreamRouteTable | undefined;
    const apps = await AggregateView.start(store, appsStream, appDecider, {
      onChange: (c) => table?.dirty.add(c.aggregateId),
    });
    const machines = await AggregateView.start(store, machinesStream, machineDecider, {
      onChange: (c) => {
        if (c.state.status === "absent") return;
        const set = machinesByApp.get(c.state.app) ?? new Set<string>();
        machinesByApp.set(c.state.app, set);
        set.add(c.aggregateId);
        table?.dirty.add(c.state.app);
      },
    });
    table = new StreamRouteTable(apps, machines, machinesByApp);
    await Promise.all([apps.caughtUp, machines.caughtUp]);
    return table;
  }

  /** The route of an app, or undefined when no such app exists. */
  lookup(app: string): AppRoute | undefined {
    if (this.dirty.has(app)) {
      this.dirty.delete(app);
      this.routes.delete(app);
    }
    const cached = this.routes.get(app);
    if (cached) return cached;
    const state = this.apps.get(app);
    if (state?.status !== "created") return undefined;
    const backends: RouteBackend[] = [];
    for (const id of this.machinesByApp.get(app) ?? []) {
      const m = this.machines.get(id);
      if (m && m.status !== "absent" && isRoutable(m)) {
        backends.push({ machineId: m.machineId, address: m.privateIp, port: m.port, region: m.region });
      }
    }
    const route = { app, backends };
    this.routes.set(app, route);
    return route;
  }

  /** Machines the proxy would send traffic to, per app (for health and agreement checks). */
  snapshot(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [name, a] of this.apps.entries()) {
      if (a.status !== "created") continue;
      out[name] = (this.lookup(name)?.backends ?? []).map((b) => b.machineId).sort();
    }
    return out;
  }

  get live(): boolean {
    return this.apps.live && this.machines.live;
  }

  async stop(): Promise<void> {
    await Promise.all([this.apps.stop(), this.machines.stop()]);
  }
}
