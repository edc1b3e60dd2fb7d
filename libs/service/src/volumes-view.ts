import {
  type Volume,
  type VolumeCommand,
  type VolumeEvent,
  type VolumeSnapshot,
  type VolumeState,
  volumeAggregateId,
  volumeDecider,
  volumesStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView, type ViewChange } from "./aggregate-view.js";

/** One change of a volume, with its state before and after the message. */
export type VolumeChange = ViewChange<VolumeState, VolumeEvent>;

export interface VolumesViewOptions {
  /** The stream to fold (default VOLUMES; tests give a prefixed one). */
  stream?: AggregateStream<VolumeEvent>;
}

/**
 * The read model of the VOLUMES stream: every volume (destroyed ones included) by app and id, with
 * the stream sequence folded so a writer can read its own writes. Replayed from the first message,
 * then followed live; the volume service, the gateway and the host agents each fold their own.
 */
export class VolumesView {
  private readonly view: AggregateView<VolumeState, VolumeCommand, VolumeEvent>;
  private readonly byApp = new Map<string, Set<string>>();

  private constructor(store: EventStore, opts: VolumesViewOptions) {
    this.view = AggregateView.create(store, opts.stream ?? volumesStream, volumeDecider);
    this.view.subscribe(({ aggregateId, state }) => {
      if (state === null) return;
      let ids = this.byApp.get(state.app);
      if (!ids) {
        ids = new Set();
        this.byApp.set(state.app, ids);
      }
      ids.add(aggregateId);
    });
  }

  /** A view that reads nothing until `follow`: subscribe first, so no listener misses a change. */
  static create(store: EventStore, opts: VolumesViewOptions = {}): VolumesView {
    return new VolumesView(store, opts);
  }

  /** Creates the view, follows the stream and resolves once the history is folded in. */
  static async start(store: EventStore, opts: VolumesViewOptions = {}): Promise<VolumesView> {
    const view = new VolumesView(store, opts);
    await view.follow();
    await view.caughtUp;
    return view;
  }

  /** Calls `listener` for every volume change from now on, after the view folded it. */
  subscribe(listener: (change: VolumeChange) => void): () => void {
    return this.view.subscribe(listener);
  }

  /** Starts reading the stream: the history, then the live tail. */
  follow(): Promise<void> {
    return this.view.follow();
  }

  /** Whether the view follows the stream live (its consumer is up). */
  get live(): boolean {
    return this.view.live;
  }

  /** Resolves once the history that existed when `follow` started is folded in. */
  get caughtUp(): Promise<unknown> {
    return this.view.caughtUp;
  }

  /** Resolves once the view has folded the message at `seq` (or a later one): read your own writes. */
  waitForSeq(seq: number, timeoutMs?: number): Promise<void> {
    return this.view.waitForSeq(seq, timeoutMs);
  }

  /** The app's volume with this id (destroyed included), if it was ever created. */
  volume(app: string, volumeId: string): Volume | undefined {
    return this.view.get(volumeAggregateId(app, volumeId)) ?? undefined;
  }

  /** The VOLUMES sequence of the volume's last message folded in; 0 when none. */
  seqOf(app: string, volumeId: string): number {
    return this.view.seqOf(volumeAggregateId(app, volumeId));
  }

  /** The app's volumes, destroyed ones included, oldest first. */
  ofApp(app: string): Volume[] {
    const out: Volume[] = [];
    for (const id of this.byApp.get(app) ?? []) {
      const v = this.view.get(id);
      if (v) out.push(v);
    }
    return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  }

  /** The volumes that live (or lived) on a host: what a host agent reconciles its disks against. */
  onHost(hostId: string): Volume[] {
    return [...this.all()].filter((v) => v.host_id === hostId);
  }

  /** A snapshot of one of the app's volumes (destroyed volumes' snapshots included), with its volume. */
  snapshot(app: string, snapshotId: string): { volume: Volume; snapshot: VolumeSnapshot } | undefined {
    for (const volume of this.ofApp(app)) {
      const snapshot = volume.snapshots.find((s) => s.id === snapshotId);
      if (snapshot) return { volume, snapshot };
    }
    return undefined;
  }

  /** Every volume ever created. */
  *all(): IterableIterator<Volume> {
    for (const [, v] of this.view.entries()) if (v) yield v;
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}
