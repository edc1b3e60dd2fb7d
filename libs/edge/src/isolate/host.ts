/**
 * The isolate's side of the bridge to its host: one isolated-vm Reference to a host function that
 * takes an operation's name and its arguments (copied across), handed over once by `__hangar_init`.
 * Only the prelude's closures hold it; the app's code never sees it.
 */

/** The part of an isolated-vm Reference (to a host function) that code inside the isolate may call. */
export interface HostReference {
  apply(receiver: undefined, args: unknown[], options: object): Promise<unknown>;
  applySync(receiver: undefined, args: unknown[], options: object): unknown;
  applyIgnored(receiver: undefined, args: unknown[], options: object): void;
}

let bridge: HostReference | undefined;

export function setHost(reference: HostReference): void {
  bridge = reference;
}

function host(): HostReference {
  if (bridge === undefined) throw new Error("the edge runtime has not initialised this isolate");
  return bridge;
}

/** Calls the host and waits for its answer (its promise runs on the host's event loop). */
export function callHost(op: string, ...args: unknown[]): Promise<unknown> {
  return host().apply(undefined, [op, ...args], {
    arguments: { copy: true },
    result: { promise: true, copy: true },
  });
}

/** Calls the host and blocks this isolate's thread until it answers (cheap host work only). */
export function callHostSync(op: string, ...args: unknown[]): unknown {
  return host().applySync(undefined, [op, ...args], { arguments: { copy: true }, result: { copy: true } });
}

/** Tells the host something without waiting (logs outside requests, released keys). */
export function tellHost(op: string, ...args: unknown[]): void {
  host().applyIgnored(undefined, [op, ...args], { arguments: { copy: true } });
}
