/**
 * Runs work one at a time per key: the work asked for a key waits until every earlier work on that
 * key has settled (fulfilled or not), while work on other keys runs alongside. A key with nothing in
 * flight holds no memory.
 */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `work` after the work in flight on `key`; resolves or rejects as `work` does. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const result = before.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Whether work on `key` is in flight or waiting. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }
}
