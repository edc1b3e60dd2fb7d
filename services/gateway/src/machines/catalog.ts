import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type ExistingMachine,
  type MachineEvent,
  machineAggregateId,
  machinesStream,
} from "@hangar/domain";
import type { EventStore } from "@hangar/eventstore";
import { AggregateView, type MachineChange, type MachineEntry, MachinesView } from "@hangar/service";
import type { FreshReadsSource } from "../http/fresh-reads.js";
import { type MachineEventRecord, startsAgain, toEventRecord } from "./events.js";

/** What the gateway knows of one machine beyond its aggregate state. */
export interface MachineRecord {
  state: ExistingMachine;
  createdAtMs: number;
  updatedAtMs: number;
  /** Newest first, at most EVENTS_KEPT. */
  events: MachineEventRecord[];
  checkUpdatedAtMs: Record<string, number>;
  /** The configs it has had, newest (the current one) first, at most VERSIONS_KEPT. */
  versions: MachineVersionRecord[];
}

/** One version of a machine: its instance id and the config it had (metadata changes it in place). */
export interface MachineVersionRecord {
  version: string;
  configJson: string;
}

const EVENTS_KEPT = 50;
const VERSIONS_KEPT = 100;

/** The API's history of one machine: its recent events, when each check last changed, its versions. */
interface MachineHistory {
  events: MachineEventRecord[];
  checkUpdatedAtMs: Record<string, number>;
  versions: MachineVersionRecord[];
}

type Waiter = { aggregateId: string; test(m: MachineRecord): boolean; resolve(m: MachineRecord): void };

/**
 * The gateway's read side: the APPS stream and the shared MachinesView in memory (rebuilt at
 * start, then live), plus each machine's recent events for the API, and waiters for state changes.
 * Every gateway instance has its own, so reads need no database round trip and a writer can wait
 * for its own append to show.
 */
export class Catalog {
  private readonly histories = new Map<string, MachineHistory>();
  private waiters: Waiter[] = [];

  private constructor(
    readonly apps: AggregateView<AppState, AppCommand, AppEvent>,
    readonly machines: MachinesView,
  ) {
    machines.subscribe((c) => this.apply(c));
  }

  static async start(store: EventStore): Promise<Catalog> {
    const catalog = new Catalog(
      AggregateView.create(store, appsStream, appDecider),
      MachinesView.create(store),
    );
    await Promise.all([catalog.apps.follow(), catalog.machines.follow()]);
    await Promise.all([catalog.apps.caughtUp, catalog.machines.caughtUp]);
    return catalog;
  }

  get live(): boolean {
    return this.apps.live && this.machines.live;
  }

  app(name: string): Exclude<AppState, { status: "absent" }> | undefined {
    const a = this.apps.get(name);
    return a && a.status === "created" ? a : undefined;
  }

  appNames(): string[] {
    const names: string[] = [];
    for (const [name, a] of this.apps.entries()) if (a.status === "created") names.push(name);
    return names.sort();
  }

  machine(aggregateId: string): MachineRecord | undefined {
    const entry = this.machines.entry(aggregateId);
    return entry && this.record(entry);
  }

  /** The app's machines, oldest first. */
  machinesOf(app: string): MachineRecord[] {
    return this.machines.ofApp(app).map((e) => this.record(e));
  }

  /** Resolves with the machine once `test` holds (checked at once and on each change), or undefined on timeout. */
  waitFor(
    aggregateId: string,
    test: (m: MachineRecord) => boolean,
    timeoutMs: number,
  ): Promise<MachineRecord | undefined> {
    const now = this.machine(aggregateId);
    if (now && test(now)) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        aggregateId,
        test,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Read-your-writes across replicas (http/fresh-reads.ts): what this replica folded, and what `store` holds. */
  freshReads(store: EventStore): FreshReadsSource {
    return {
      appKnown: (app) => this.app(app) !== undefined,
      machineKnown: (app, id) => this.machine(machineAggregateId(app, id)) !== undefined,
      lastAppSeq: (app) => store.lastSequence(appsStream, app),
      lastMachineSeq: (app, id) => store.lastSequence(machinesStream, machineAggregateId(app, id)),
      waitForApps: (seq, timeoutMs) => this.apps.waitForSeq(seq, timeoutMs),
      waitForMachines: (seq, timeoutMs) => this.machines.waitForSeq(seq, timeoutMs),
    };
  }

  async stop(): Promise<void> {
    await Promise.all([this.apps.stop(), this.machines.stop()]);
  }

  private record(entry: MachineEntry): MachineRecord {
    const history = this.histories.get(entry.aggregateId);
    const versions = history?.versions ?? [];
    return {
      state: entry.state,
      createdAtMs: entry.createdAtMs,
      updatedAtMs: entry.updatedAtMs,
      events: history?.events ?? [],
      checkUpdatedAtMs: history?.checkUpdatedAtMs ?? {},
      // A machine whose creation this catalog did not see has at least its current version.
      versions:
        versions.length > 0
          ? versions
          : [{ version: entry.state.instanceId, configJson: entry.state.configJson }],
    };
  }

  private apply(c: MachineChange): void {
    if (c.state.status === "absent") return;
    let history = this.histories.get(c.aggregateId);
    if (!history) {
      history = { events: [], checkUpdatedAtMs: {}, versions: [] };
      this.histories.set(c.aggregateId, history);
    }
    for (const [i, r] of c.events.entries()) {
      if (r.event.type === "MachineCheckChanged")
        history.checkUpdatedAtMs[r.event.data.name ?? ""] = r.timeUnixMs;
      foldVersion(history.versions, r.event, c.state.configJson);
      const e = toEventRecord(r, r.event.type === "MachineExited" && startsAgain(c.events, i));
      if (e) history.events.unshift(e);
    }
    if (history.events.length > EVENTS_KEPT) history.events.length = EVENTS_KEPT;
    if (history.versions.length > VERSIONS_KEPT) history.versions.length = VERSIONS_KEPT;
    if (this.waiters.length > 0) {
      const entry = this.machines.entry(c.aggregateId);
      if (!entry) return;
      const rec = this.record(entry);
      this.waiters = this.waiters.filter((w) => {
        if (w.aggregateId !== c.aggregateId || !w.test(rec)) return true;
        w.resolve(rec);
        return false;
      });
    }
  }
}

/**
 * A machine's versions after `event`, newest first: a create or an update is a new version; a
 * metadata change rewrites the current one (`configJson`: the machine's config after the event).
 */
function foldVersion(versions: MachineVersionRecord[], event: MachineEvent, configJson: string): void {
  switch (event.type) {
    case "MachineCreated":
    case "MachineUpdated":
      versions.unshift({ version: event.data.instanceId ?? "", configJson: event.data.configJson ?? "" });
      return;
    case "MachineMetadataSet":
    case "MachineMetadataDeleted": {
      const current = versions[0];
      if (current) versions[0] = { ...current, configJson };
      return;
    }
    default:
      return;
  }
}
