/**
 * The edge runtime: one V8 isolate (isolated-vm) per app, each with its heap limit, running on
 * isolated-vm's own threads so that the embedder's event loop never runs an app's code. Requests
 * and responses cross whole. A watchdog charges each request the isolate's CPU time while it is in
 * flight and stops an isolate whose request goes over its CPU limit; an isolate over its heap limit
 * is thrown away by V8. Either way the app's isolate is made again from the same bundle on its next
 * request.
 */
import ivm from "isolated-vm";
import { BridgeState, hostBridge, isHeaderList, logLine } from "./bridge.js";
import { edgeDigest } from "./bundle-code.js";
import {
  EDGE_BODY_MAX_BYTES,
  EDGE_DEFAULT_LIMITS,
  type EdgeAppEnv,
  type EdgeBundle,
  EdgeError,
  type EdgeErrorCode,
  type EdgeHost,
  type EdgeHttpRequest,
  type EdgeHttpResponse,
  type EdgeLimits,
  type EdgeLogLevel,
  type EdgeRuntimeLike,
} from "./contract.js";
import { type PreparedIsolate, SpareIsolates } from "./isolate-pool.js";
import { assertIsolateFlags } from "./node-flags.js";

/** How often the watchdog reads the CPU time of the isolates that are running or may run. */
const WATCHDOG_MS = 5;
/** An isolate with nothing in flight stays watched this long after it last did anything. */
/** The shortest busy run without an answer taken for a loop, whatever the CPU limit (`looping`). */
const LOOP_MIN_MS = 250;
const WATCH_IDLE_MS = 1_000;
/** The wall time the bundle's top level (and the prelude's setup) may take when it loads. */
const LOAD_TIMEOUT_MS = 2_000;
const OUTSIDE = "code run outside a request (a timer, waitUntil)";
/** Console lines taken from one answer (the prelude holds at most 200, and one noting the rest). */
const LOGS_PER_ANSWER_MAX = 201;

interface InFlight {
  /** The instance's chargedNs when the request began: its charge is what chargedNs grew since. */
  chargedAtStart: number;
  fail(error: EdgeError): void;
}

/** One isolate of an app: made from a bundle, serving until it is replaced, removed or stopped. */
interface Instance {
  app: string;
  limits: EdgeLimits;
  isolate: ivm.Isolate;
  dispatch: ivm.Reference;
  bridge: BridgeState;
  inFlight: Set<InFlight>;
  /** The highest cpuTime read (charged up to it), and the last one read. */
  cpuMark: bigint;
  rawCpu: bigint;
  /**
   * The CPU time the isolate used while exactly one request was in flight, summed: all of it that
   * request's own (CPU used while several are in flight is nobody's for sure; `looping` watches it).
   */
  chargedNs: number;
  /**
   * A stretch in which the isolate's cpuTime grew at every look and it answered nothing: since when
   * (performance.now()), with cpuTime then. A loop makes one, whatever else is in flight.
   */
  busy?: { at: number; cpu: bigint };
  /** cpuTime at the watchdog's last look. */
  lookCpu: bigint;
  /** Over the limit since (performance.now()), while the watchdog waits out its grace. */
  suspect?: { at: number };
  /** CPU time the isolate used while nothing of it was in flight (timers, waitUntil), since it was last idle. */
  backgroundNs: number;
  touchedAt: number;
  /** When (performance.now()) the isolate last answered a request: it was not stuck then. */
  progressAt: number;
  /** Replaced by a deploy or removed: disposed when its last request ends. */
  retired: boolean;
  /** Why the runtime stopped it, if it did. */
  stopped?: EdgeErrorCode;
}

interface AppSlot {
  bundle: EdgeBundle;
  env: EdgeAppEnv;
  limits: EdgeLimits;
  instance?: Instance;
  loading?: Promise<Instance>;
}

/** The failures an app's own code causes, which its isolate reports (the others are the runtime's). */
const CODE_FAILURES = new Set<EdgeErrorCode>(["uncaught", "no_handler", "bad_response"]);

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isMemoryLimit(error: unknown): boolean {
  return /memory limit/i.test(messageOf(error));
}

/** An answer from the isolate's dispatch: a response, or why there is none; its console lines to the host. */
function answerOf(app: string, host: EdgeHost, bridge: BridgeState, answer: unknown): EdgeHttpResponse {
  const value = answer as Partial<EdgeHttpResponse> & {
    error?: EdgeErrorCode;
    message?: string;
    logs?: [EdgeLogLevel, string][];
  };
  // At most what the prelude holds for a request (isolate/console.ts); the host's budget bounds the rest.
  if (Array.isArray(value?.logs))
    for (const entry of value.logs.slice(0, LOGS_PER_ANSWER_MAX))
      if (Array.isArray(entry)) logLine(host, app, bridge.logs, entry[0], entry[1]);
  // The app's code shares the isolate with the prelude and could bend what dispatch answers: only
  // the failures the code itself can cause, and well-formed responses, are taken as they are.
  if (value?.error !== undefined)
    throw new EdgeError(
      CODE_FAILURES.has(value.error) ? value.error : "bad_response",
      `${app}: ${String(value.message ?? value.error)}`,
    );
  if (
    typeof value?.status !== "number" ||
    !Number.isInteger(value.status) ||
    value.status < 200 ||
    value.status > 599 ||
    !isHeaderList(value.headers) ||
    !(value.body instanceof Uint8Array) ||
    (value.statusText !== undefined && typeof value.statusText !== "string")
  )
    throw new EdgeError("bad_response", `${app}: the isolate answered a malformed response`);
  // The prelude cuts a body at the bound; code that bent it could send more, and the host refuses it.
  if (value.body.byteLength > EDGE_BODY_MAX_BYTES)
    throw new EdgeError(
      "bad_response",
      `${app}: a response body is larger than ${EDGE_BODY_MAX_BYTES} bytes`,
    );
  return {
    status: value.status,
    headers: value.headers,
    body: value.body,
    ...(value.statusText ? { statusText: value.statusText } : {}),
  };
}

export class EdgeRuntime implements EdgeRuntimeLike {
  private readonly apps = new Map<string, AppSlot>();
  /** Each app's deploys, one at a time. */
  private readonly deploying = new Map<string, Promise<void>>();
  /** Each app's removals so far: a deploy that began before one does not install. */
  private readonly removals = new Map<string, number>();
  private readonly watched = new Set<Instance>();
  /** Every isolate loaded and not yet released. */
  private readonly live = new Set<Instance>();
  private readonly spares = new SpareIsolates(LOAD_TIMEOUT_MS);
  private watchdog: NodeJS.Timeout | undefined;
  private disposed = false;

  constructor(
    private readonly host: EdgeHost,
    private readonly defaults: EdgeLimits = EDGE_DEFAULT_LIMITS,
  ) {}

  async deploy(
    app: string,
    bundle: EdgeBundle,
    env: EdgeAppEnv,
    limits?: Partial<EdgeLimits>,
  ): Promise<void> {
    if (this.disposed) throw new Error("the edge runtime was disposed");
    if (edgeDigest(bundle.code) !== bundle.digest)
      throw new EdgeError("compile", `${app}: the bundle's code does not match its digest ${bundle.digest}`);
    const full: EdgeLimits = { ...this.defaults, ...limits };
    const previous = this.deploying.get(app) ?? Promise.resolve();
    const removals = this.removals.get(app) ?? 0;
    const next = previous.catch(() => undefined).then(() => this.install(app, bundle, env, full, removals));
    this.deploying.set(app, next);
    try {
      await next;
    } finally {
      if (this.deploying.get(app) === next) this.deploying.delete(app);
    }
  }

  current(app: string): string | undefined {
    return this.apps.get(app)?.bundle.digest;
  }

  async dispatch(app: string, req: EdgeHttpRequest): Promise<EdgeHttpResponse> {
    if (req.body !== undefined && req.body.byteLength > EDGE_BODY_MAX_BYTES)
      throw new EdgeError(
        "uncaught",
        `${app}: a request body is larger than ${EDGE_BODY_MAX_BYTES} bytes`,
        413,
      );
    let url: string;
    try {
      // Node's URL (ada) serialises it here; the isolate takes it as it is (isolate/request.ts).
      url = new URL(req.url).href;
    } catch {
      throw new EdgeError(
        "uncaught",
        `${app}: the request's URL ${JSON.stringify(req.url)} is not absolute`,
        400,
      );
    }
    const instance = await this.instanceOf(app);
    return this.run(instance, url === req.url ? req : { ...req, url });
  }

  remove(app: string): void {
    this.removals.set(app, (this.removals.get(app) ?? 0) + 1);
    const slot = this.apps.get(app);
    if (slot === undefined) return;
    this.apps.delete(app);
    if (slot.instance !== undefined) this.stop(slot.instance, "not_deployed", `${app} was removed`);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.spares.close();
    const slots = [...this.apps.values()];
    this.apps.clear();
    for (const slot of slots)
      await slot.loading?.then((instance) => this.release(instance)).catch(() => undefined);
    // Serving, retired but still draining, or loaded by a deploy still under way: all go.
    for (const instance of [...this.live])
      this.stop(instance, "not_deployed", "the edge runtime was disposed");
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  /** Loads the bundle in a new isolate, then makes it the app's in one step; the old one drains. */
  private async install(
    app: string,
    bundle: EdgeBundle,
    env: EdgeAppEnv,
    limits: EdgeLimits,
    removals: number,
  ): Promise<void> {
    const instance = await this.load(app, bundle, env, limits);
    if (this.disposed) {
      this.release(instance);
      throw new Error("the edge runtime was disposed");
    }
    // Removed while it loaded: the removal is the later word.
    if ((this.removals.get(app) ?? 0) !== removals) {
      this.release(instance);
      return;
    }
    const old = this.apps.get(app);
    this.apps.set(app, { bundle, env, limits, instance });
    if (old?.instance !== undefined) this.retire(old.instance);
  }

  /** The app's serving isolate, made again from its bundle when the last one was stopped. */
  private async instanceOf(app: string): Promise<Instance> {
    const slot = this.apps.get(app);
    if (slot === undefined) throw new EdgeError("not_deployed", `${app}: no edge release is loaded here`);
    const serving = slot.instance;
    if (serving !== undefined && !serving.isolate.isDisposed && serving.stopped === undefined) return serving;
    if (serving !== undefined) {
      slot.instance = undefined;
      this.release(serving);
    }
    if (slot.loading === undefined) {
      const loading = this.load(app, slot.bundle, slot.env, slot.limits);
      slot.loading = loading;
      loading.then(
        (instance) => {
          if (slot.loading === loading) slot.loading = undefined;
          if (this.apps.get(app) === slot && slot.instance === undefined) slot.instance = instance;
          else if (slot.instance !== instance) this.release(instance);
        },
        () => {
          if (slot.loading === loading) slot.loading = undefined;
        },
      );
    }
    return slot.loading;
  }

  /** A fresh isolate with the prelude, the bridge and the app's bundle loaded. */
  private async load(
    app: string,
    bundle: EdgeBundle,
    env: EdgeAppEnv,
    limits: EdgeLimits,
  ): Promise<Instance> {
    assertIsolateFlags();
    let prepared: PreparedIsolate;
    try {
      prepared = await this.spares.take(limits.memoryMb);
    } catch (error) {
      throw new EdgeError("compile", `${app}: making an isolate failed: ${messageOf(error)}`);
    }
    const { isolate, context } = prepared;
    const bridge = new BridgeState();
    const instance: Instance = {
      app,
      limits,
      isolate,
      dispatch: undefined as unknown as ivm.Reference,
      bridge,
      inFlight: new Set(),
      cpuMark: 0n,
      rawCpu: 0n,
      lookCpu: 0n,
      chargedNs: 0,
      backgroundNs: 0,
      touchedAt: Date.now(),
      progressAt: performance.now(),
      retired: false,
    };
    try {
      const init: ivm.Reference = await context.global.get("__hangar_init", { reference: true });
      const reference = new ivm.Reference(hostBridge(app, this.host, bridge, () => this.touch(instance)));
      const entry = (await init.apply(
        undefined,
        [reference, app, new ivm.ExternalCopy({ appEnv: env.appEnv, vars: { ...env.vars } }).copyInto()],
        { result: { reference: true }, timeout: LOAD_TIMEOUT_MS },
      )) as ivm.Reference;
      instance.dispatch = await entry.get("dispatch", { reference: true });
      const register: ivm.Reference = await entry.get("registerModule", { reference: true });
      const module = await isolate.compileModule(bundle.code, {
        filename: `edge://${app}/${bundle.digest}.js`,
      });
      await module.instantiate(context, (specifier) => {
        throw new Error(`import ${JSON.stringify(specifier)}: an edge app's code is one bundle`);
      });
      await module.evaluate({ timeout: LOAD_TIMEOUT_MS });
      await register.apply(undefined, [module.namespace.derefInto()], { timeout: LOAD_TIMEOUT_MS });
      instance.cpuMark = isolate.cpuTime;
      this.live.add(instance);
      return instance;
    } catch (error) {
      const memory = isMemoryLimit(error);
      this.release(instance);
      throw new EdgeError(
        memory ? "memory_limit" : "compile",
        `${app}: loading ${bundle.digest} failed: ${messageOf(error)}`,
      );
    }
  }

  private run(instance: Instance, req: EdgeHttpRequest): Promise<EdgeHttpResponse> {
    const { app, limits } = instance;
    return new Promise<EdgeHttpResponse>((resolve, reject) => {
      let done = false;
      const finish = (error: EdgeError | undefined, response?: EdgeHttpResponse) => {
        if (done) return;
        done = true;
        clearTimeout(wall);
        this.account(instance);
        instance.inFlight.delete(request);
        instance.backgroundNs = 0;
        if (instance.retired && instance.inFlight.size === 0) this.release(instance);
        if (error !== undefined) reject(error);
        else resolve(response as EdgeHttpResponse);
      };
      this.account(instance);
      const request: InFlight = { chargedAtStart: instance.chargedNs, fail: (error) => finish(error) };
      instance.inFlight.add(request);
      // Background time is counted over a stretch without requests; a request's start or end ends one.
      instance.backgroundNs = 0;
      this.touch(instance);
      const wall = setTimeout(
        () => finish(new EdgeError("wall_limit", `${app}: the request took longer than ${limits.wallMs} ms`)),
        limits.wallMs,
      );
      instance.dispatch
        .apply(undefined, [req], { arguments: { copy: true }, result: { promise: true, copy: true } })
        .then(
          (answer) => {
            this.answered(instance);
            try {
              finish(undefined, answerOf(app, this.host, instance.bridge, answer));
            } catch (error) {
              finish(error as EdgeError);
            }
          },
          (error: unknown) => {
            // The app's code threw: the isolate answered. A stopped or disposed one did not.
            if (instance.stopped === undefined && !instance.isolate.isDisposed) this.answered(instance);
            finish(this.failure(instance, error));
          },
        );
    });
  }

  private answered(instance: Instance): void {
    instance.progressAt = performance.now();
    instance.busy = undefined;
  }

  /** Why a dispatch into the isolate failed. */
  private failure(instance: Instance, error: unknown): EdgeError {
    if (instance.stopped !== undefined)
      return new EdgeError(
        instance.stopped,
        `${instance.app}: its isolate was stopped (${instance.stopped})`,
      );
    if (isMemoryLimit(error) || instance.isolate.isDisposed) {
      this.stop(
        instance,
        "memory_limit",
        `${instance.app}: its isolate went over ${instance.limits.memoryMb} MB`,
      );
      return new EdgeError(
        "memory_limit",
        `${instance.app}: its isolate went over ${instance.limits.memoryMb} MB`,
      );
    }
    return new EdgeError("uncaught", `${instance.app}: ${messageOf(error)}`);
  }

  /**
   * Charges the CPU time the isolate used since the last look to the request in flight when there is
   * exactly one (then it is surely its own: neither split among parked requests nor charged to a
   * request waiting on a fetch beside others' work): `chargedNs` adds it up, so a request's charge
   * is its growth since the request began (O(1) per look; the oldest request has the largest, as no
   * other is ever alone while it is in flight). isolated-vm's cpuTime is the
   * thread's CPU time for finished slices but the wall time of a slice still running, so it can read
   * high while the thread waits for a core and lower once the slice ends: the mark only goes up.
   */
  private account(instance: Instance): void {
    if (instance.isolate.isDisposed) return;
    const now = instance.isolate.cpuTime;
    instance.rawCpu = now;
    if (now <= instance.cpuMark) return;
    const used = Number(now - instance.cpuMark);
    instance.cpuMark = now;
    instance.touchedAt = Date.now();
    if (instance.inFlight.size === 0) instance.backgroundNs += used;
    else if (instance.inFlight.size === 1) instance.chargedNs += used;
  }

  private touch(instance: Instance): void {
    instance.touchedAt = Date.now();
    if (instance.retired && instance.inFlight.size === 0) return;
    this.watched.add(instance);
    // The runtime's own timers never keep the process alive.
    this.watchdog ??= setInterval(() => this.tick(), WATCHDOG_MS).unref();
  }

  /**
   * What the watchdog found over the CPU limit, if anything: the oldest request (the most charged),
   * or code run outside requests.
   */
  private overLimit(instance: Instance, readHigh = 0n): string | undefined {
    const limitNs = instance.limits.cpuMs * 1e6 + Number(readHigh);
    const oldest = instance.inFlight.values().next().value;
    if (oldest !== undefined && instance.chargedNs - oldest.chargedAtStart > limitNs) return "a request";
    if (instance.backgroundNs > limitNs) return OUTSIDE;
    return undefined;
  }

  /**
   * A loop, whatever shares its isolate: its cpuTime grew at every look, by at least half the wall
   * time, for twice the CPU limit (at least LOOP_MIN_MS), and it answered nothing meanwhile. The floor
   * is there because a slice still running reads as wall time: an isolate serving many requests on a
   * loaded host, whose thread waits for a core, reads busy without a break for a while (20 requests
   * at once of the balancer example were stopped so at 40 ms, load 15 on 2 cores).
   */
  private looping(instance: Instance): boolean {
    const cpu = instance.rawCpu;
    const grew = cpu > instance.lookCpu;
    instance.lookCpu = cpu;
    if (!grew || instance.busy === undefined) {
      instance.busy = grew ? { at: performance.now(), cpu } : undefined;
      return false;
    }
    const span = performance.now() - instance.busy.at;
    return (
      span >= Math.max(LOOP_MIN_MS, 2 * instance.limits.cpuMs) &&
      Number(cpu - instance.busy.cpu) >= span * 0.5e6
    );
  }

  /**
   * Stops the isolates over their CPU limit. A charge over the limit must hold for a grace as long
   * as the limit (at least 20 ms) in which the isolate answers no request, and still be over at its
   * end net of what the last look may read high (a slice that read high while its thread waited for
   * a core reads lower once it ends). Apart from any charge, an isolate busy without a break for
   * twice the limit and answering nothing is a loop, however many requests share it (`looping`).
   * Only an answer from the isolate counts (a request that timed out, or a call to the host from a
   * loop, is no sign the isolate is free). A loop is so stopped after about twice the limit; code
   * that works in bursts between sleeps, alone in its isolate, once its charge is over the limit.
   */
  private tick(): void {
    const now = Date.now();
    for (const instance of this.watched) {
      if (instance.isolate.isDisposed || instance.stopped !== undefined) {
        this.watched.delete(instance);
        continue;
      }
      this.account(instance);
      if (this.looping(instance)) {
        this.stopForCpu(instance, instance.inFlight.size > 0 ? "a request" : OUTSIDE);
        continue;
      }
      const over = this.overLimit(instance);
      if (over === undefined) {
        instance.suspect = undefined;
      } else if (instance.suspect === undefined) {
        instance.suspect = { at: performance.now() };
      } else {
        const span = performance.now() - instance.suspect.at;
        if (span >= Math.max(20, instance.limits.cpuMs)) {
          const readHigh = instance.cpuMark > instance.rawCpu ? instance.cpuMark - instance.rawCpu : 0n;
          if (instance.progressAt < instance.suspect.at && this.overLimit(instance, readHigh) !== undefined) {
            this.stopForCpu(instance, over);
            continue;
          }
          instance.suspect = { at: performance.now() };
        }
      }
      if (instance.inFlight.size === 0 && now - instance.touchedAt > WATCH_IDLE_MS)
        this.watched.delete(instance);
    }
    if (this.watched.size === 0 && this.watchdog !== undefined) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
    }
  }

  private stopForCpu(instance: Instance, what: string): void {
    const message = `${instance.app}: ${what} used more than ${instance.limits.cpuMs} ms of CPU`;
    this.host.log(instance.app, "error", `${message}; its isolate was stopped`);
    this.stop(instance, "cpu_limit", message);
  }

  /** Stops an isolate: what it has in flight fails with `code`; the app's next request makes a new one. */
  private stop(instance: Instance, code: EdgeErrorCode, message: string): void {
    if (instance.stopped !== undefined) return;
    instance.stopped = code;
    for (const slot of this.apps.values()) if (slot.instance === instance) slot.instance = undefined;
    const inFlight = [...instance.inFlight];
    instance.inFlight.clear();
    this.release(instance);
    for (const request of inFlight) request.fail(new EdgeError(code, message));
  }

  /** Replaced by a deploy: serves what it has in flight, then goes. */
  private retire(instance: Instance): void {
    instance.retired = true;
    if (instance.inFlight.size === 0) this.release(instance);
  }

  private release(instance: Instance): void {
    this.live.delete(instance);
    this.watched.delete(instance);
    instance.bridge.close();
    if (!instance.isolate.isDisposed) instance.isolate.dispose();
  }
}
