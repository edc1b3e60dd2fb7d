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
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import type { EventStore, RecordedEvent } from "@hangar/eventstore";
import { AggregateView, type ViewChange } from "@hangar/service";
import { type MachineEventRecord, toEventRecord } from "./events.js";

/** What the gateway knows of one machine beyond its aggregate state. */
export interface MachineRecord {
  state: ExistingMachine;
  createdAtMs: number;
  updatedAtMs: number;
  /** Newest first, at most EVENTS_KEPT. */
  events: MachineEventRecord[];
  checkUpdatedAtMs: Record<string, number>;
}

const EVENTS_KEPT = 50;

type Waiter = { aggregateId: string; test(m: MachineRecord): boolean; resolve(m: MachineRecord): void };

/**
 * The gateway's read side: apps and machines folded from their streams in memory (rebuilt at
 * start, then live), with each machine's recent events and timestamps, and waiters for state changes.
 * Every gateway instance has its own, so reads need no database round trip and a writer can wait
 * for its own append to show.
 */
export class Catalog {
  private readonly records = new Map<string, MachineRecord>();
  private readonly byApp = new Map<string, Set<string>>();
  private waiters: Waiter[] = [];

  private constructor(
    readonly apps: AggregateView<AppState, AppCommand, AppEvent>,
    readonly machines: AggregateView<MachineState, MachineCommand, MachineEvent>,
  ) {}

  static async start(store: EventStore): Promise<Catalog> {
    let catalog: Catalog | undefined;
    const pending: ViewChange<MachineState, MachineEvent>[] = [];
    const apps = await AggregateView.start(store, appsStream, appDecider);
    const machines = await AggregateView.start(store, machinesStream, machineDecider, {
      onChange: (c) => {
        if (catalog) catalog.apply(c);
        else pending.push(c);
      },
    });
    catalog = new Catalog(apps, machines);
    for (const c of pending) catalog.apply(c);
    await Promise.all([apps.caughtUp, machines.caughtUp]);
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
    return this.records.get(aggregateId);
  }

  /** The app's machines, oldest first. */
  machinesOf(app: string): MachineRecord[] {
    const ids = this.byApp.get(app);
    if (!ids) return [];
    const list: MachineRecord[] = [];
    for (const id of ids) {
      const r = this.records.get(id);
      if (r) list.push(r);
    }
    return list.sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** Resolves with the machine once `test` holds (checked at once and on each change), or undefined on timeout. */
  waitFor(
    aggregateId: string,
    test: (m: MachineRecord) => boolean,
    timeoutMs: number,
  ): Promise<MachineRecord | undefined> {
    const now = this.records.get(aggregateId);
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

  async stop(): Promise<void> {
    await Promise.all([this.apps.stop(), this.machines.stop()]);
  }

  private apply(c: ViewChange<MachineState, MachineEvent>): void {
    if (c.state.status === "absent") return;
    const first = c.events[0] as RecordedEvent<MachineEvent>;
    let record = this.records.get(c.aggregateId);
    if (!record) {
      record = {
        state: c.state,
        createdAtMs: first.timeUnixMs,
        updatedAtMs: first.timeUnixMs,
        events: [],
        checkUpdatedAtMs: {},
      };
      this.records.set(c.aggregateId, record);
      const set = this.byApp.get(c.state.app) ?? new Set<string>();
      this.byApp.set(c.state.app, set);
      set.add(c.aggregateId);
    }
    record.state = c.state;
    record.updatedAtMs = first.timeUnixMs;
    for (const r of c.events) {
      if (r.event.type === "MachineCheckChanged")
        record.checkUpdatedAtMs[r.event.data.name ?? ""] = r.timeUnixMs;
      const e = toEventRecord(r);
      if (e) record.events.unshift(e);
    }
    if (record.events.length > EVENTS_KEPT) record.events.length = EVENTS_KEPT;
    if (this.waiters.length > 0) {
      const rec = record;
      this.waiters = this.waiters.filter((w) => {
        if (w.aggregateId !== c.aggregateId || !w.test(rec)) return true;
        w.resolve(rec);
        return false;
      });
    }
  }
}
