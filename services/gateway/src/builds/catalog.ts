import {
  type BuildCommand,
  type BuildEvent,
  type BuildState,
  buildAggregateId,
  buildDecider,
  buildsStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView, type ViewChange } from "@hangar/service";

/** A build that exists. */
export type RequestedBuild = Exclude<BuildState, { status: "absent" }>;

/** What the gateway knows of one build: its state and when it was requested. */
export interface BuildRecord {
  state: RequestedBuild;
  createdAtMs: number;
}

/**
 * The gateway's read side of builds: the BUILDS stream folded in memory (rebuilt at start, then
 * live), indexed by app, with each build's request time from its first event's envelope.
 */
export class BuildCatalog {
  private readonly records = new Map<string, BuildRecord>();
  private readonly byApp = new Map<string, Set<string>>();
  private constructor(private readonly view: AggregateView<BuildState, BuildCommand, BuildEvent>) {
    view.subscribe((c) => this.apply(c));
  }

  /** Follows the stream and resolves once its history is folded in. */
  static async start(
    store: EventStore,
    stream: AggregateStream<BuildEvent> = buildsStream,
  ): Promise<BuildCatalog> {
    const catalog = new BuildCatalog(AggregateView.create(store, stream, buildDecider));
    await catalog.view.follow();
    await catalog.view.caughtUp;
    return catalog;
  }

  build(app: string, buildId: string): BuildRecord | undefined {
    return this.records.get(buildAggregateId(app, buildId));
  }

  /** The app's builds, newest first. */
  buildsOf(app: string): BuildRecord[] {
    const list: BuildRecord[] = [];
    for (const id of this.byApp.get(app) ?? []) {
      const r = this.records.get(id);
      if (r) list.push(r);
    }
    // Build ids are ULIDs: they break ties between builds requested in the same millisecond.
    return list.sort(
      (a, b) =>
        b.createdAtMs - a.createdAtMs ||
        (b.state.request.buildId ?? "").localeCompare(a.state.request.buildId ?? ""),
    );
  }

  /** Resolves once the catalog has folded the message at `seq` (read your own writes). */
  waitForSeq(seq: number): Promise<void> {
    return this.view.waitForSeq(seq);
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }

  private apply(c: ViewChange<BuildState, BuildEvent>): void {
    if (c.state.status === "absent") return;
    const record = this.records.get(c.aggregateId);
    if (record) {
      record.state = c.state;
      return;
    }
    this.records.set(c.aggregateId, { state: c.state, createdAtMs: c.events[0]?.timeUnixMs ?? 0 });
    const app = c.state.request.app ?? "";
    const ids = this.byApp.get(app) ?? new Set<string>();
    this.byApp.set(app, ids);
    ids.add(c.aggregateId);
  }
}
