import {
  DEFAULT_SCALING,
  imageStaticsOf,
  type ProxyHttpOptions,
  proxyHttpOptions,
  type ScalingSettings,
  scalingSettings,
  staticsSetId,
} from "@hangar/config";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type MachineEvent,
  machineAggregateId,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView, MachinesView } from "@hangar/service";
import type { SleepingMachine } from "../engine/route-table.js";
import type { AppStatics } from "../statics/static-files.js";
import { hasServices, isRoutable } from "./routable.js";

/** A machine the proxy may send requests to. */
export interface RouteBackend {
  machineId: string;
  address: string;
  port: number;
  region: string;
}

/**
 * An app the proxy knows: the machines that can serve it now, those it may wake, its limits, and its
 * http_options (ProxyHttpOptions, of the same machine as its limits).
 */
export interface AppRoute extends ProxyHttpOptions {
  app: string;
  backends: RouteBackend[];
  /** Its organization's slug: fly-replay crosses between apps of one organization only. */
  org: string;
  /** From the app's newest (last created) machine that is not destroyed and has services; Fly's defaults when none. */
  settings: ScalingSettings;
  /** Its stopped and suspended machines, cordoned or not. */
  sleeping: SleepingMachine[];
  /** Its machines being started. */
  starting: string[];
  /** The [[statics]] of its newest machine that has services or statics (that machine's image's files). */
  statics?: AppStatics;
}

/** Where the table reads from; tests give prefixed streams. */
export interface StreamRouteTableOptions {
  apps?: AggregateStream<AppEvent>;
  machines?: AggregateStream<MachineEvent>;
}

/**
 * The proxy's routing table, rebuilt from the APPS and MACHINES streams at start and kept current
 * from their live tail: an app's backends are its started, uncordoned machines with a service whose
 * checks are not critical (machines without a service are neither backends nor woken). Lookups are
 * a map read; an app's route is rebuilt only when one of its machines changes, and listeners hear of
 * every such change.
 */
export class StreamRouteTable {
  private readonly routes = new Map<string, AppRoute>();
  private readonly dirty = new Set<string>();
  private readonly listeners = new Set<(app: string) => void>();

  private constructor(
    private readonly apps: AggregateView<AppState, AppCommand, AppEvent>,
    private readonly machines: MachinesView,
  ) {
    apps.subscribe((c) => this.changed(c.aggregateId));
    machines.subscribe((c) => {
      if (c.state.status !== "absent") this.changed(c.state.app);
    });
  }

  static async start(store: EventStore, opts: StreamRouteTableOptions = {}): Promise<StreamRouteTable> {
    const table = new StreamRouteTable(
      AggregateView.create(store, opts.apps ?? appsStream, appDecider),
      MachinesView.create(store, opts.machines ? { stream: opts.machines } : {}),
    );
    await Promise.all([table.apps.follow(), table.machines.follow()]);
    await Promise.all([table.apps.caughtUp, table.machines.caughtUp]);
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
    const route = this.build(app, state.orgSlug);
    this.routes.set(app, route);
    return route;
  }

  /**
   * The private network an existing app is on (`<org>/<network>`): apps reach each other by their
   * `.internal` names only within one. Undefined for an app that does not exist.
   */
  privateNetworkOf(app: string): string | undefined {
    const state = this.apps.get(app);
    return state?.status === "created" ? `${state.orgSlug}/${state.network}` : undefined;
  }

  /** Calls `listener` with the app's name each time one of its machines (or the app) changes. */
  onChange(listener: (app: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last MACHINES stream sequence folded in. */
  get machinesSeq(): number {
    return this.machines.lastSeq;
  }

  /** The MACHINES sequence of the machine's last message (0 when unknown): what a start is decided on. */
  machineSeq(app: string, machineId: string): number {
    return this.machines.seqOf(machineAggregateId(app, machineId));
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
    this.listeners.clear();
    await Promise.all([this.apps.stop(), this.machines.stop()]);
  }

  private changed(app: string): void {
    this.dirty.add(app);
    for (const listener of this.listeners) listener(app);
  }

  private build(app: string, org: string): AppRoute {
    const backends: RouteBackend[] = [];
    const sleeping: SleepingMachine[] = [];
    const starting: string[] = [];
    const candidates: Array<{ seq: number; configJson: string }> = [];
    for (const { state: m, createdSeq } of this.machines.ofApp(app)) {
      if (!hasServices(m)) {
        // No service (a worker process group): never a backend, never woken.
      } else if (isRoutable(m)) {
        backends.push({ machineId: m.machineId, address: m.privateIp, port: m.port, region: m.region });
      } else if (m.status === "stopped" || m.status === "suspended") {
        sleeping.push({ machineId: m.machineId, region: m.region, status: m.status });
      } else if (m.status === "starting") {
        starting.push(m.machineId);
      }
      if (m.status !== "destroyed" && m.status !== "destroying") {
        candidates.push({ seq: createdSeq, configJson: m.configJson });
      }
    }
    // Newest first; parsing stops at the first machine that has services.
    candidates.sort((a, b) => b.seq - a.seq);
    let settings: ScalingSettings | undefined;
    let options: ProxyHttpOptions = {};
    for (const c of candidates) {
      settings = scalingSettings(c.configJson);
      if (settings) {
        options = proxyHttpOptions(c.configJson);
        break;
      }
    }
    const statics = staticsOf(candidates);
    return {
      app,
      backends,
      org,
      settings: settings ?? DEFAULT_SCALING,
      sleeping,
      starting,
      ...(statics ? { statics } : {}),
      ...options,
    };
  }
}

/**
 * An app's statics: those of its newest machine (of `candidates`, newest first) that has services
 * or statics, so that a deploy's new release brings its own files, and one without statics none.
 */
function staticsOf(candidates: ReadonlyArray<{ configJson: string }>): AppStatics | undefined {
  for (const c of candidates) {
    let config: { services?: unknown[]; statics?: unknown[] } | undefined;
    try {
      config = JSON.parse(c.configJson);
    } catch {
      continue;
    }
    if (!config?.services?.length && !config?.statics?.length) continue;
    const found = imageStaticsOf(config);
    return found ? { setId: staticsSetId(found.image, found.statics), statics: found.statics } : undefined;
  }
  return undefined;
}
