import {
  type Release,
  type ReleaseCommand,
  type ReleaseEvent,
  type ReleasesState,
  releaseDecider,
  releasesStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView, type ViewChange } from "@hangar/service";

/** One release and when it was created. */
export interface ReleaseRecord {
  release: Release;
  createdAtMs: number;
}

/**
 * The gateway's read side of releases: the RELEASES stream folded in memory (one aggregate per
 * app), with each release's creation time from its ReleaseCreated envelope.
 */
export class ReleaseCatalog {
  private readonly createdAt = new Map<string, number>();
  private constructor(private readonly view: AggregateView<ReleasesState, ReleaseCommand, ReleaseEvent>) {
    view.subscribe((c) => this.apply(c));
  }

  /** Follows the stream and resolves once its history is folded in. */
  static async start(
    store: EventStore,
    stream: AggregateStream<ReleaseEvent> = releasesStream,
  ): Promise<ReleaseCatalog> {
    const catalog = new ReleaseCatalog(AggregateView.create(store, stream, releaseDecider));
    await catalog.view.follow();
    await catalog.view.caughtUp;
    return catalog;
  }

  /** The app's releases, newest first. */
  releasesOf(app: string): ReleaseRecord[] {
    const releases = this.view.get(app)?.releases ?? [];
    return releases.map((r) => this.record(app, r)).reverse();
  }

  release(app: string, version: number): ReleaseRecord | undefined {
    const r = this.view.get(app)?.releases.find((x) => x.version === version);
    return r && this.record(app, r);
  }

  /** Resolves once the catalog has folded the message at `seq` (read your own writes). */
  waitForSeq(seq: number): Promise<void> {
    return this.view.waitForSeq(seq);
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }

  private record(app: string, release: Release): ReleaseRecord {
    return { release, createdAtMs: this.createdAt.get(`${app}#${release.version}`) ?? 0 };
  }

  private apply(c: ViewChange<ReleasesState, ReleaseEvent>): void {
    for (const r of c.events) {
      if (r.event.type === "ReleaseCreated") {
        this.createdAt.set(`${c.aggregateId}#${r.event.data.version ?? 0}`, r.timeUnixMs);
      }
    }
  }
}
