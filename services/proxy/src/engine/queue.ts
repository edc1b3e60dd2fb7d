/** A place in a HoldQueue; the holder keeps it to leave the queue (a client that went away). */
export interface QueueEntry<T> {
  readonly item: T;
  timer: NodeJS.Timeout | undefined;
}

/**
 * First in, first out, with a deadline per entry and removal from anywhere in O(1): a Set keeps
 * insertion order, so the oldest entry is its first value.
 */
export class HoldQueue<T> {
  private readonly entries = new Set<QueueEntry<T>>();

  get size(): number {
    return this.entries.size;
  }

  /** Appends `item`; `expired` is called with it (already out of the queue) after `timeoutMs`. */
  push(item: T, timeoutMs: number, expired: (item: T) => void): QueueEntry<T> {
    const entry: QueueEntry<T> = { item, timer: undefined };
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.entries.delete(entry)) expired(item);
    }, timeoutMs);
    // A held request must not keep a process alive that is otherwise done (tests, shutdown).
    entry.timer.unref();
    this.entries.add(entry);
    return entry;
  }

  /** The entries, oldest first; one may be removed while iterating. */
  [Symbol.iterator](): IterableIterator<QueueEntry<T>> {
    return this.entries.values();
  }

  /** Whether `entry` is still queued. */
  has(entry: QueueEntry<T>): boolean {
    return this.entries.has(entry);
  }

  /** Takes `entry` out; false when it was no longer queued. */
  remove(entry: QueueEntry<T>): boolean {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    return this.entries.delete(entry);
  }

  /** Empties the queue, oldest first. */
  drain(): T[] {
    const items: T[] = [];
    for (const e of this.entries) {
      if (e.timer !== undefined) clearTimeout(e.timer);
      items.push(e.item);
    }
    this.entries.clear();
    return items;
  }
}
