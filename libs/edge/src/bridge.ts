/**
 * The host's side of an isolate's bridge: the one function the prelude calls (by an isolated-vm
 * Reference) for fetch, console, fly.cache, timers, random bytes and crypto.subtle. The app's name is
 * fixed here when the isolate is made; nothing the code passes chooses it. What the bridge holds for
 * the isolate (fetches, timers, keys) is released when the isolate is.
 */
import { randomBytes, webcrypto } from "node:crypto";
import {
  EDGE_BODY_MAX_BYTES,
  type EdgeHost,
  type EdgeHttpRequest,
  type EdgeHttpResponse,
  type EdgeImageOp,
  type EdgeLogLevel,
} from "./contract.js";
import { SUBTLE_OPERATIONS as SUBTLE_OPERATION_NAMES } from "./isolate/subtle-operations.js";

/** Node 20 has CryptoKey as a global only (not on crypto.webcrypto). */
const CryptoKeyClass = (globalThis as unknown as { CryptoKey: typeof webcrypto.CryptoKey }).CryptoKey;
const LOG_LEVELS = new Set<EdgeLogLevel>(["debug", "info", "warn", "error"]);
/** A console line longer than this is cut (the rest is noted by its length). */
const LOG_LINE_MAX = 16 * 1024;
/** Timers an isolate may have waiting at once (setTimeout, setInterval). */
export const EDGE_TIMERS_MAX = 1_000;
/** Keys an isolate may hold at once (crypto.subtle). */
const KEYS_MAX = 10_000;
/**
 * Fetches an isolate may have in flight at once (each may hold EDGE_BODY_MAX_BYTES of its answer on
 * the host). One isolate serves all of an app's requests at once in a process, so this is shared by
 * them: a balancer answering 100 requests at once fetches 100 at once. Past it, fetches wait their
 * turn in order (EDGE_FETCHES_MAX_WAITING of them, holding at most EDGE_FETCHES_WAITING_MAX_BYTES of
 * request bodies); past that, a fetch is refused.
 */
export const EDGE_FETCHES_MAX_IN_FLIGHT = 50;
/** Fetches an isolate may have waiting for one of its EDGE_FETCHES_MAX_IN_FLIGHT turns. */
export const EDGE_FETCHES_MAX_WAITING = 1_000;
/** The request bodies an isolate's waiting fetches may hold together on the host. */
export const EDGE_FETCHES_WAITING_MAX_BYTES = 64 * 1024 * 1024;
/** The most PBKDF2 iterations a derivation may ask for (each costs the host's thread pool). */
export const EDGE_PBKDF2_MAX_ITERATIONS = 1_000_000;
/** The largest RSA modulus a key generation may ask for. */
export const EDGE_RSA_MAX_BITS = 4096;
/**
 * Heavy host work (crypto.subtle's key generation and derivation, images) runs on libuv's 4 shared
 * threads, which also answer dns.lookup, fs and zlib: an isolate may have this many such operations
 * under way, and the process runs at most HEAVY_MAX at once (the rest wait their turn), so some of
 * the pool is always free for the proxy's own work.
 */
export const EDGE_HEAVY_PER_ISOLATE = 2;
const HEAVY_MAX = 2;
const HEAVY_OPERATIONS = new Set(["generateKey", "deriveBits", "deriveKey"]);
const SUBTLE_OPERATIONS: ReadonlySet<string> = new Set(SUBTLE_OPERATION_NAMES);

/** What one isolate's bridge holds, released with the isolate. */
export class BridgeState {
  readonly fetches = new Map<number, AbortController>();
  /** Fetches waiting for a turn (the bound above), in order, by the isolate's fetch id. */
  readonly fetchesWaiting = new Map<number, { bytes: number; go: () => void; stop: (e: Error) => void }>();
  fetchesWaitingBytes = 0;
  /** The isolate's timers waiting, by its timer id: a cleared one is cancelled here too. */
  readonly timers = new Map<number, { timer: NodeJS.Timeout; done: () => void }>();
  readonly keys = new Map<number, webcrypto.CryptoKey>();
  nextKey = 1;
  closed = false;
  /** What console output the isolate may still send. */
  readonly logs = new LogBudget();
  /** Heavy operations of this isolate under way or waiting for the process's turn. */
  heavy = 0;

  close(): void {
    this.closed = true;
    heavyTurns.drop(this);
    for (const controller of this.fetches.values())
      controller.abort(new Error("the edge app's isolate was stopped"));
    this.fetches.clear();
    for (const waiting of this.fetchesWaiting.values())
      waiting.stop(new Error("the edge app's isolate was stopped"));
    this.fetchesWaiting.clear();
    this.fetchesWaitingBytes = 0;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.keys.clear();
  }
}

/** The process's turns at heavy host work: at most HEAVY_MAX at once, the rest in order. */
class HeavyTurns {
  private running = 0;
  private readonly waiting: { state: BridgeState; go: () => void; stop: (e: Error) => void }[] = [];

  async run<T>(state: BridgeState, work: () => Promise<T>): Promise<T> {
    if (state.heavy >= EDGE_HEAVY_PER_ISOLATE)
      throw new RangeError(
        `QuotaExceededError: more than ${EDGE_HEAVY_PER_ISOLATE} image or key operations at once`,
      );
    state.heavy++;
    try {
      if (this.running >= HEAVY_MAX)
        await new Promise<void>((go, stop) => this.waiting.push({ state, go, stop }));
      else this.running++;
      try {
        return await work();
      } finally {
        const next = this.waiting.shift();
        if (next === undefined) this.running--;
        else next.go();
      }
    } finally {
      state.heavy--;
    }
  }

  /** A stopped isolate's waiting operations never start. */
  drop(state: BridgeState): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const entry = this.waiting[i];
      if (entry?.state !== state) continue;
      this.waiting.splice(i, 1);
      entry.stop(new Error("the edge app's isolate was stopped"));
    }
  }
}

const heavyTurns = new HeavyTurns();

/** Refuses what would make the host's crypto run without bound: PBKDF2 iterations, RSA modulus. */
function checkCost(op: string, args: unknown[]): void {
  const algorithm = args[0] as { name?: unknown; iterations?: unknown; modulusLength?: unknown } | undefined;
  if (typeof algorithm !== "object" || algorithm === null) return;
  const name = String(algorithm.name).toUpperCase();
  if (
    (op === "deriveBits" || op === "deriveKey") &&
    name === "PBKDF2" &&
    !(Number(algorithm.iterations) <= EDGE_PBKDF2_MAX_ITERATIONS)
  )
    throw new RangeError(`NotSupportedError: PBKDF2 takes at most ${EDGE_PBKDF2_MAX_ITERATIONS} iterations`);
  if (
    op === "generateKey" &&
    name.startsWith("RSA") &&
    !(Number(algorithm.modulusLength) <= EDGE_RSA_MAX_BITS)
  )
    throw new RangeError(`NotSupportedError: an RSA modulus is at most ${EDGE_RSA_MAX_BITS} bits`);
}

/** Console lines an isolate may send in a burst, and per second after it. */
export const EDGE_LOG_LINES_PER_S = 1_000;
/** Console characters an isolate may send in a burst, and per second after it. */
export const EDGE_LOG_CHARS_PER_S = 1024 * 1024;
const LOG_BURST_LINES = 2 * EDGE_LOG_LINES_PER_S;

/**
 * How much console output an isolate may still send (token buckets of lines and characters): an
 * app's logging is the embedder's main thread's work. Lines over it are dropped and counted; the
 * next line that goes says how many.
 */
export class LogBudget {
  private lines = LOG_BURST_LINES;
  private chars = EDGE_LOG_CHARS_PER_S;
  private at = performance.now();
  dropped = 0;

  take(chars: number): boolean {
    const now = performance.now();
    const seconds = (now - this.at) / 1000;
    this.at = now;
    this.lines = Math.min(LOG_BURST_LINES, this.lines + seconds * EDGE_LOG_LINES_PER_S);
    this.chars = Math.min(EDGE_LOG_CHARS_PER_S, this.chars + seconds * EDGE_LOG_CHARS_PER_S);
    if (this.lines < 1 || this.chars < chars) {
      this.dropped++;
      return false;
    }
    this.lines -= 1;
    this.chars -= chars;
    return true;
  }
}

/** One console line of an app's code to its host, its level checked, its length and rate capped. */
export function logLine(
  host: EdgeHost,
  app: string,
  budget: LogBudget,
  level: unknown,
  message: unknown,
): void {
  const text = stringArg(message, "a log line");
  const line =
    text.length > LOG_LINE_MAX ? `${text.slice(0, LOG_LINE_MAX)}... (${text.length} characters)` : text;
  if (!budget.take(line.length)) return;
  if (budget.dropped > 0) {
    host.log(
      app,
      "warn",
      `${budget.dropped} console lines dropped (more than ${EDGE_LOG_LINES_PER_S} lines or ${EDGE_LOG_CHARS_PER_S} characters a second)`,
    );
    budget.dropped = 0;
  }
  host.log(app, LOG_LEVELS.has(level as EdgeLogLevel) ? (level as EdgeLogLevel) : "info", line);
}

/** Whether a value is a header list as the contract has it: [name, value] pairs of strings. */
export function isHeaderList(value: unknown): value is [string, string][] {
  return (
    Array.isArray(value) &&
    value.every(
      (pair) =>
        Array.isArray(pair) &&
        pair.length === 2 &&
        typeof pair[0] === "string" &&
        typeof pair[1] === "string",
    )
  );
}

function outboundRequest(value: unknown): EdgeHttpRequest {
  const req = value as Partial<EdgeHttpRequest> | undefined;
  if (
    typeof req?.method !== "string" ||
    typeof req.url !== "string" ||
    !isHeaderList(req.headers) ||
    (req.body !== undefined && !(req.body instanceof Uint8Array))
  )
    throw new TypeError("fetch: a malformed request");
  if (req.body !== undefined && req.body.byteLength > EDGE_BODY_MAX_BYTES)
    throw new RangeError(`fetch: a request body is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
  return { method: req.method, url: req.url, headers: req.headers, ...(req.body ? { body: req.body } : {}) };
}

function inboundResponse(res: EdgeHttpResponse): EdgeHttpResponse {
  if (res.body.byteLength > EDGE_BODY_MAX_BYTES)
    throw new RangeError(`fetch: a response body is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
  return {
    status: res.status,
    headers: res.headers,
    body: res.body,
    ...(res.statusText === undefined ? {} : { statusText: res.statusText }),
  };
}

function stringArg(value: unknown, what: string): string {
  if (typeof value !== "string") throw new TypeError(`${what} must be a string`);
  return value;
}

/** Arguments from the isolate: { $key: n } names a key the bridge holds. */
function withKeys(state: BridgeState, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => withKeys(state, v));
  if (typeof value === "object" && value !== null && !ArrayBuffer.isView(value)) {
    const record = value as Record<string, unknown>;
    if (typeof record.$key === "number") {
      const key = state.keys.get(record.$key);
      if (key === undefined) throw new TypeError("InvalidAccessError: the key was released");
      return key;
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, withKeys(state, v)]));
  }
  return value;
}

/** Results for the isolate: keys become descriptions with a handle, buffers bytes. */
function describeResult(state: BridgeState, value: unknown): unknown {
  if (value instanceof CryptoKeyClass) {
    if (state.keys.size >= KEYS_MAX)
      throw new RangeError(`QuotaExceededError: more than ${KEYS_MAX} keys held`);
    const handle = state.nextKey++;
    state.keys.set(handle, value);
    return {
      $handle: handle,
      type: value.type,
      extractable: value.extractable,
      algorithm: JSON.parse(
        JSON.stringify(value.algorithm, (_, v) => (v instanceof Uint8Array ? [...v] : v)),
      ),
      usages: value.usages,
    };
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (typeof value === "object" && value !== null && "publicKey" in value && "privateKey" in value) {
    const pair = value as webcrypto.CryptoKeyPair;
    return {
      publicKey: describeResult(state, pair.publicKey),
      privateKey: describeResult(state, pair.privateKey),
    };
  }
  return value;
}

async function subtle(state: BridgeState, op: unknown, args: unknown): Promise<unknown> {
  if (typeof op !== "string" || !SUBTLE_OPERATIONS.has(op) || !Array.isArray(args))
    throw new TypeError(`NotSupportedError: crypto.subtle.${String(op)} is not supported`);
  const method = (webcrypto.subtle as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[op];
  try {
    checkCost(op, args);
    const call = () =>
      method?.apply(webcrypto.subtle, withKeys(state, args) as unknown[]) as Promise<unknown>;
    return describeResult(state, await (HEAVY_OPERATIONS.has(op) ? heavyTurns.run(state, call) : call()));
  } catch (error) {
    const e = error as Error;
    throw new Error(`${/Error$/.test(e.name) ? e.name : "OperationError"}: ${e.message}`);
  }
}

/** Gives the first waiting fetch of the isolate its turn, once one in flight is done. */
function nextFetch(state: BridgeState): void {
  if (state.closed || state.fetches.size >= EDGE_FETCHES_MAX_IN_FLIGHT) return;
  const first = state.fetchesWaiting.entries().next();
  if (first.done) return;
  const [id, waiting] = first.value;
  state.fetchesWaiting.delete(id);
  state.fetchesWaitingBytes -= waiting.bytes;
  waiting.go();
}

/** The function an isolate of `app` calls for everything it needs of its host. */
export function hostBridge(
  app: string,
  host: EdgeHost,
  state: BridgeState,
  touched: () => void,
): (op: string, ...args: unknown[]) => unknown {
  const serve = (op: string, args: unknown[]): unknown => {
    if (state.closed) throw new Error("the edge app's isolate was stopped");
    touched();
    switch (op) {
      case "fetch": {
        const [id, req] = args;
        if (typeof id !== "number") throw new TypeError("fetch: a malformed id");
        const request = outboundRequest(req);
        const start = () => {
          const controller = new AbortController();
          state.fetches.set(id, controller);
          return host
            .fetch(app, request, controller.signal)
            .then(inboundResponse)
            .finally(() => {
              state.fetches.delete(id);
              nextFetch(state);
              touched();
            });
        };
        if (state.fetches.size < EDGE_FETCHES_MAX_IN_FLIGHT && state.fetchesWaiting.size === 0)
          return start();
        const bytes = request.body?.byteLength ?? 0;
        if (
          state.fetchesWaiting.size >= EDGE_FETCHES_MAX_WAITING ||
          state.fetchesWaitingBytes + bytes > EDGE_FETCHES_WAITING_MAX_BYTES
        )
          throw new RangeError(
            `fetch: more than ${EDGE_FETCHES_MAX_IN_FLIGHT} fetches in flight and ${EDGE_FETCHES_MAX_WAITING} (or ${EDGE_FETCHES_WAITING_MAX_BYTES} bytes of bodies) waiting at once`,
          );
        state.fetchesWaitingBytes += bytes;
        // go() starts the fetch at once, so its turn cannot be taken by another in between.
        return new Promise<EdgeHttpResponse>((resolve, stop) =>
          state.fetchesWaiting.set(id, { bytes, go: () => resolve(start()), stop }),
        );
      }
      case "abortFetch": {
        const id = args[0] as number;
        const waiting = state.fetchesWaiting.get(id);
        if (waiting !== undefined) {
          state.fetchesWaiting.delete(id);
          state.fetchesWaitingBytes -= waiting.bytes;
          waiting.stop(new Error("aborted by the app"));
        }
        state.fetches.get(id)?.abort(new Error("aborted by the app"));
        return undefined;
      }
      case "log":
        logLine(host, app, state.logs, args[0], args[1]);
        return undefined;
      case "cacheGet":
        return host.cacheGet(app, stringArg(args[0], "a cache key"));
      case "cacheSet": {
        const [key, value, ttl] = args;
        if (!(value instanceof Uint8Array)) throw new TypeError("a cache value must be bytes");
        if (ttl !== undefined && typeof ttl !== "number") throw new TypeError("a cache TTL must be a number");
        return host.cacheSet(app, stringArg(key, "a cache key"), value, ttl);
      }
      case "cacheDelete":
        return host.cacheDelete(app, stringArg(args[0], "a cache key"));
      case "image": {
        const [input, ops] = args;
        if (!(input instanceof Uint8Array) || !Array.isArray(ops))
          throw new TypeError("image: malformed arguments");
        if (host.image === undefined) throw new Error("image operations are not available on this host");
        const image = host.image.bind(host);
        return heavyTurns
          .run(state, () => image(app, input, ops as EdgeImageOp[]))
          .then((out) => ({ ...out }));
      }
      case "sleep": {
        const id = args[1];
        if (typeof id !== "number" || state.timers.has(id))
          throw new TypeError("sleep: a malformed timer id");
        if (state.timers.size >= EDGE_TIMERS_MAX)
          throw new RangeError(`more than ${EDGE_TIMERS_MAX} timers waiting at once`);
        return new Promise<void>((resolve) => {
          const ms = Math.min(Math.max(0, Number(args[0]) || 0), 2 ** 31 - 1);
          const done = () => {
            clearTimeout(timer);
            state.timers.delete(id);
            resolve();
          };
          const timer = setTimeout(() => {
            done();
            touched();
          }, ms);
          // An app's timers never keep the embedder's process alive.
          timer.unref();
          state.timers.set(id, { timer, done });
        });
      }
      case "cancelSleep":
        state.timers.get(args[0] as number)?.done();
        return undefined;
      case "random": {
        const n = args[0];
        if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 65536)
          throw new RangeError("random: 0 to 65536 bytes");
        return new Uint8Array(randomBytes(n));
      }
      case "subtle":
        return subtle(state, args[0], args[1]);
      case "releaseKey":
        state.keys.delete(args[0] as number);
        return undefined;
      default:
        throw new TypeError(`the edge host has no operation ${JSON.stringify(op)}`);
    }
  };
  return (op, ...args) => {
    const result = serve(op, args);
    // isolated-vm hands a rejection to the isolate, but takes the promise up only after Node has
    // looked for unhandled rejections: one already rejected (a refusal) would be reported as such.
    if (result instanceof Promise) result.catch(() => undefined);
    return result;
  };
}
