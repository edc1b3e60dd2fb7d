/**
 * Isolates made ahead of need: a fresh isolate with its context and the prelude run costs most of a
 * cold start (docs/edge.md: 7.6 + 8.7 of about 20 ms on a quiet core), and none of it depends on the
 * app. So for each memory limit in use, one spare isolate waits, prepared in the background after
 * the last was taken; a deploy takes it and only loads the app's own code. A spare has never run an
 * app's code: it is as fresh as one made on the spot. Every prepared isolate has also run the
 * prelude's request path once (isolate/app.ts `warm`), so an app's first request is not the one to
 * pay for V8 compiling it.
 */
import ivm from "isolated-vm";
import { edgePrelude, edgePreludeCache, PRELUDE_FILENAME } from "./prelude.js";

/** An isolate with its context, the prelude run in it. */
export interface PreparedIsolate {
  isolate: ivm.Isolate;
  context: ivm.Context;
}

/** Memory limits with a spare kept; the least recently used goes beyond this. */
const SPARE_LIMITS_MAX = 4;

async function prepare(memoryMb: number, timeoutMs: number): Promise<PreparedIsolate> {
  const [prelude, cachedData] = await Promise.all([edgePrelude(), edgePreludeCache()]);
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  try {
    const context = await isolate.createContext();
    const script = await isolate.compileScript(prelude, { filename: PRELUDE_FILENAME, cachedData });
    await script.run(context, { timeout: timeoutMs });
    // The prelude's request path run once, so that the app's first request costs what later ones do.
    const warm: ivm.Reference = await context.global.get("__hangar_warm", { reference: true });
    await warm.apply(undefined, [], { result: { promise: true }, timeout: timeoutMs });
    return { isolate, context };
  } catch (error) {
    isolate.dispose();
    throw error;
  }
}

export class SpareIsolates {
  private readonly spares = new Map<number, Promise<PreparedIsolate>>();
  private closed = false;

  constructor(private readonly timeoutMs: number) {}

  /** A prepared isolate of this memory limit (the spare if one is ready or on its way); a new spare follows. */
  async take(memoryMb: number): Promise<PreparedIsolate> {
    const spare = this.spares.get(memoryMb);
    this.spares.delete(memoryMb);
    const taken = spare ?? prepare(memoryMb, this.timeoutMs);
    taken.then(
      () => this.refill(memoryMb),
      () => undefined,
    );
    return taken;
  }

  private refill(memoryMb: number): void {
    if (this.closed || this.spares.has(memoryMb)) return;
    const next = prepare(memoryMb, this.timeoutMs);
    // A spare that failed is dropped; the next take prepares one on the spot and says why.
    next.catch(() => {
      if (this.spares.get(memoryMb) === next) this.spares.delete(memoryMb);
    });
    this.spares.set(memoryMb, next);
    while (this.spares.size > SPARE_LIMITS_MAX) {
      const [oldest, isolate] = this.spares.entries().next().value as [number, Promise<PreparedIsolate>];
      this.spares.delete(oldest);
      isolate.then(
        ({ isolate: spare }) => spare.dispose(),
        () => undefined,
      );
    }
  }

  /** Disposes the spares; none are made after. */
  close(): void {
    this.closed = true;
    for (const spare of this.spares.values())
      spare.then(
        ({ isolate }) => isolate.dispose(),
        () => undefined,
      );
    this.spares.clear();
  }
}
