import { StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { patiently } from "./patiently.js";
import type { AggregateStream } from "./stream.js";

/** A state saved at a stream sequence, with the recent command ids that led to it. */
export interface Snapshot<S> {
  seq: number;
  state: S;
  /** Recent command ids and the sequence of the message each produced, for idempotency across the snapshot. */
  commands: [string, number][];
}

/** How a state is saved; bump `version` when the state's shape changes and old snapshots are ignored. */
export interface SnapshotCodec<S> {
  version: number;
  encode(state: S): unknown;
  decode(data: unknown): S;
}

/** JSON as it is: for states made of plain objects, arrays, strings, numbers and booleans. */
export function jsonSnapshots<S>(version = 1): SnapshotCodec<S> {
  return { version, encode: (s) => s, decode: (d) => d as S };
}

/** Snapshots of one aggregate stream in a KV bucket (`snapshots-<stream>`), one key per aggregate. */
export class SnapshotStore<S> {
  private constructor(
    private readonly kv: KV,
    private readonly codec: SnapshotCodec<S>,
  ) {}

  /** Opens (or creates) the snapshot bucket of a stream. */
  static async open<S>(
    nc: NatsConnection,
    stream: AggregateStream<{ type: string }>,
    codec: SnapshotCodec<S>,
  ): Promise<SnapshotStore<S>> {
    const kv = await patiently(() =>
      new Kvm(nc).create(`snapshots-${stream.name}`, {
        history: 1,
        storage: StorageType.File,
      }),
    );
    return new SnapshotStore(kv, codec);
  }

  /** The aggregate's snapshot, or undefined when there is none or it was made by another state version. */
  async load(aggregateId: string): Promise<Snapshot<S> | undefined> {
    const entry = await this.kv.get(aggregateId);
    if (entry?.operation !== "PUT" || entry.length === 0) return undefined;
    const saved = entry.json<{ v: number; seq: number; state: unknown; commands: [string, number][] }>();
    if (saved.v !== this.codec.version) return undefined;
    return { seq: saved.seq, state: this.codec.decode(saved.state), commands: saved.commands };
  }

  /** Saves a snapshot; an older one never replaces a newer one written by another instance. */
  async save(aggregateId: string, snapshot: Snapshot<S>): Promise<void> {
    const value = JSON.stringify({
      v: this.codec.version,
      seq: snapshot.seq,
      state: this.codec.encode(snapshot.state),
      commands: snapshot.commands,
    });
    const current = await this.kv.get(aggregateId);
    if (current && current.operation === "PUT" && current.length > 0) {
      if (current.json<{ seq: number }>().seq >= snapshot.seq) return;
      try {
        await this.kv.update(aggregateId, value, current.revision);
      } catch {
        // Another instance saved first; its snapshot is as good or newer.
      }
      return;
    }
    try {
      await this.kv.create(aggregateId, value);
    } catch {
      // Created concurrently by another instance.
    }
  }
}
