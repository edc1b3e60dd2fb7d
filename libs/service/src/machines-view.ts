import {
  type ExistingMachine,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView, type ViewChange } from "./aggregate-view.js";

/** One change of a machine, with its state before and after the message. */
export type MachineChange = ViewChange<MachineState, MachineEvent>;

/** What the view knows of one machine that exists (created, destroyed ones included). */
export interface MachineEntry {
  aggregateId: string;
  state: ExistingMachine;
  /** The MACHINES sequence of the machine's creation, so "newest" needs no clock. */
  createdSeq: number;
  /** Event times (unix ms) of its creation and of its last message. */
  createdAtMs: number;
  updatedAtMs: number;
  /** Event time of its last `MachineStarted`; 0 when it never started. */
  startedAtMs: number;
}

/**
 * The machines folded from their changes, indexed by id, by app and by host. Pure (no I/O), so its
 * indexing is tested by feeding it recorded changes; MachinesView feeds it the MACHINES stream.
 */
export class MachineIndex {
  private readonly entries = new Map<string, MachineEntry>();
  private readonly byApp = new Map<string, Set<string>>();
  private readonly byHost = new Map<string, Set<string>>();
  /** A host agent knows its processes by machine id only (unique in practice, but not across apps). */
  private readonly byMachineId = new Map<string, Set<string>>();

  /** Folds one message's change in. */
  apply({ aggregateId, state, events }: MachineChange): void {
    const first = events[0];
    if (state.status === "absent" || !first) return;
    let entry = this.entries.get(aggregateId);
    if (!entry) {
      const created = events.find((r) => r.event.type === "MachineCreated") ?? first;
      entry = {
        aggregateId,
        state,
        createdSeq: created.seq,
        createdAtMs: created.timeUnixMs,
        updatedAtMs: first.timeUnixMs,
        startedAtMs: 0,
      };
      this.entries.set(aggregateId, entry);
      addTo(this.byApp, state.app, aggregateId);
      addTo(this.byHost, state.hostId, aggregateId);
      addTo(this.byMachineId, state.machineId, aggregateId);
    } else if (entry.state.hostId !== state.hostId) {
      this.byHost.get(entry.state.hostId)?.delete(aggregateId);
      addTo(this.byHost, state.hostId, aggregateId);
    }
    entry.state = state;
    entry.updatedAtMs = first.timeUnixMs;
    const started = events.findLast((r) => r.event.type === "MachineStarted");
    if (started) entry.startedAtMs = started.timeUnixMs;
  }

  /** The machine with this aggregate id (`<app>.<machine id>`). */
  get(aggregateId: string): MachineEntry | undefined {
    return this.entries.get(aggregateId);
  }

  /** The app's machines, oldest first (by creation sequence). */
  ofApp(app: string): MachineEntry[] {
    return this.collect(this.byApp.get(app));
  }

  /** The machines placed on a host, oldest first. */
  onHost(hostId: string): MachineEntry[] {
    return this.collect(this.byHost.get(hostId));
  }

  /** The machine with this id on a host, if it is placed there. */
  onHostById(hostId: string, machineId: string): MachineEntry | undefined {
    for (const id of this.byMachineId.get(machineId) ?? []) {
      const e = this.entries.get(id);
      if (e?.state.hostId === hostId) return e;
    }
    return undefined;
  }

  /** Apps that have (or had) machines. */
  apps(): string[] {
    return [...this.byApp.keys()];
  }

  all(): IterableIterator<MachineEntry> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  private collect(ids: Set<string> | undefined): MachineEntry[] {
    const out: MachineEntry[] = [];
    for (const id of ids ?? []) {
      const e = this.entries.get(id);
      if (e) out.push(e);
    }
    return out.sort((a, b) => a.createdSeq - b.createdSeq);
  }
}

function addTo(index: Map<string, Set<string>>, key: string, aggregateId: string): void {
  let ids = index.get(key);
  if (!ids) {
    ids = new Set();
    index.set(key, ids);
  }
  ids.add(aggregateId);
}

export interface MachinesViewOptions {
  /** The stream to fold (default MACHINES; tests give a prefixed one). */
  stream?: AggregateStream<MachineEvent>;
}

/**
 * The one read model of the MACHINES stream that every service shares: each machine's state and
 * times, by id, by app and by host, with the stream sequence folded. Replayed from the first
 * message, then followed live. Services derive what they need from `subscribe`'s changes, which
 * come after the index has folded them.
 */
export class MachinesView {
  private readonly index = new MachineIndex();
  private readonly view: AggregateView<MachineState, MachineCommand, MachineEvent>;

  private constructor(store: EventStore, opts: MachinesViewOptions) {
    this.view = AggregateView.create(store, opts.stream ?? machinesStream, machineDecider);
    this.view.subscribe((change) => this.index.apply(change));
  }

  /** A view that reads nothing until `follow`: subscribe first, so no listener misses a change. */
  static create(store: EventStore, opts: MachinesViewOptions = {}): MachinesView {
    return new MachinesView(store, opts);
  }

  /** Creates the view, follows the stream and resolves once the history is folded in. */
  static async start(store: EventStore, opts: MachinesViewOptions = {}): Promise<MachinesView> {
    const view = new MachinesView(store, opts);
    await view.follow();
    await view.caughtUp;
    return view;
  }

  /** Calls `listener` for every machine change from now on, after the index folded it. */
  subscribe(listener: (change: MachineChange) => void): () => void {
    return this.view.subscribe(listener);
  }

  /** Starts reading the stream: the history, then the live tail. */
  follow(): Promise<void> {
    return this.view.follow();
  }

  /** Resolves once the history that existed when `follow` started is folded in. */
  get caughtUp(): Promise<unknown> {
    return this.view.caughtUp;
  }

  /** True once caught up: changes from then on are live. */
  get live(): boolean {
    return this.view.live;
  }

  /** The last MACHINES sequence folded in. */
  get lastSeq(): number {
    return this.view.lastSeq;
  }

  /** Resolves once the view has folded the message at `seq` (or a later one): read your own writes. */
  waitForSeq(seq: number, timeoutMs?: number): Promise<void> {
    return this.view.waitForSeq(seq, timeoutMs);
  }

  /** The MACHINES sequence of the machine's last message; 0 when none. */
  seqOf(aggregateId: string): number {
    return this.view.seqOf(aggregateId);
  }

  /** The machine with this aggregate id, if it exists. */
  get(aggregateId: string): ExistingMachine | undefined {
    return this.index.get(aggregateId)?.state;
  }

  /** The app's machine with this id, if it exists. */
  machine(app: string, machineId: string): ExistingMachine | undefined {
    return this.get(machineAggregateId(app, machineId));
  }

  /** The machine's state with its creation and update times. */
  entry(aggregateId: string): MachineEntry | undefined {
    return this.index.get(aggregateId);
  }

  /** The app's machines (destroyed ones included), oldest first. */
  ofApp(app: string): MachineEntry[] {
    return this.index.ofApp(app);
  }

  /** The machines placed on a host (destroyed ones included), oldest first. */
  onHost(hostId: string): MachineEntry[] {
    return this.index.onHost(hostId);
  }

  /** The machine with this id placed on a host, if any: a host agent's lookup for a process. */
  onHostById(hostId: string, machineId: string): ExistingMachine | undefined {
    return this.index.onHostById(hostId, machineId)?.state;
  }

  /** Apps that have (or had) machines. */
  apps(): string[] {
    return this.index.apps();
  }

  /** Every machine. */
  all(): IterableIterator<MachineEntry> {
    return this.index.all();
  }

  get size(): number {
    return this.index.size;
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}
