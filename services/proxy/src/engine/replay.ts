import type { AppState, BackendState } from "./backends.js";
import type { Refusal } from "./refusal.js";

/**
 * Fly's `fly-replay` response header: a machine answers with it to have the proxy send the same
 * request somewhere else (another app of its organization, a region, one machine), instead of
 * relaying its answer. https://fly.io/docs/networking/dynamic-request-routing/
 */

/**
 * Most times one request is replayed before the proxy calls it a loop. Fly documents no number; a
 * router app replaying to an app that replays to a region is three, so five leaves room.
 */
export const MAX_REPLAYS = 5;

/** Largest request body the proxy keeps to replay the request: Fly replays requests up to 1 MB. */
export const REPLAY_BODY_MAX = 1024 * 1024;

/** Where a machine asked the proxy to replay a request. */
export interface ReplayAsk {
  /** Another app, of the same organization; none: the app that answered. */
  app?: string;
  /** Regions in order of preference; `any` stands for every machine. None: any region. */
  regions?: string[];
  /** The one machine to send it to. */
  instance?: string;
  /** A machine to send it to when it can take it now; otherwise as if not given. */
  preferInstance?: string;
  /** Passed to the target in `fly-replay-src`. */
  state?: string;
  /** Leave out the machine that answered (Hangar leaves out every machine that replayed the request). */
  elsewhere: boolean;
}

/** A `fly-replay` header the proxy cannot follow. */
export class ReplayHeaderError extends Error {
  override readonly name = "ReplayHeaderError";
}

const FIELDS = new Set(["app", "region", "instance", "prefer_instance", "state", "elsewhere"]);

/**
 * Parses a `fly-replay` value: `field=value` pairs split by `;`, values bare or quoted
 * (`region="sjc,any"`). Fields Hangar does not implement (`timeout`, `fallback`) are ignored.
 */
export function parseReplay(value: string): ReplayAsk {
  const fields = new Map<string, string>();
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (i < n && (value[i] === " " || value[i] === "\t" || value[i] === ";")) i++;
    if (i >= n) break;
    const eq = value.indexOf("=", i);
    const semi = value.indexOf(";", i);
    if (eq < 0 || (semi >= 0 && semi < eq)) {
      throw new ReplayHeaderError(`"${value.slice(i, semi < 0 ? n : semi).trim()}" is not field=value`);
    }
    const key = value.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
    let v: string;
    if (value[i] === '"') {
      v = "";
      i++;
      while (i < n && value[i] !== '"') {
        if (value[i] === "\\" && i + 1 < n) i++;
        v += value[i];
        i++;
      }
      if (i >= n) throw new ReplayHeaderError(`the value of ${key} has no closing quote`);
      i++;
      while (i < n && value[i] !== ";") {
        if (value[i] !== " " && value[i] !== "\t")
          throw new ReplayHeaderError(`text after the quoted ${key}`);
        i++;
      }
    } else {
      const end = value.indexOf(";", i);
      v = value.slice(i, end < 0 ? n : end).trim();
      i = end < 0 ? n : end;
    }
    if (!FIELDS.has(key)) continue;
    if (fields.has(key)) throw new ReplayHeaderError(`${key} is given twice`);
    fields.set(key, v);
  }
  if (fields.size === 0) throw new ReplayHeaderError(`"${value}" names no target (app, region, instance)`);
  const ask: ReplayAsk = { elsewhere: false };
  for (const [key, v] of fields) {
    switch (key) {
      case "app":
        ask.app = nonEmpty(key, v);
        break;
      case "region": {
        const regions = v
          .split(",")
          .map((r) => r.trim().toLowerCase())
          .filter((r) => r !== "");
        if (regions.length === 0) throw new ReplayHeaderError("region is empty");
        ask.regions = regions;
        break;
      }
      case "instance":
        ask.instance = nonEmpty(key, v);
        break;
      case "prefer_instance":
        ask.preferInstance = nonEmpty(key, v);
        break;
      case "state":
        ask.state = v;
        break;
      case "elsewhere": {
        const b = v.toLowerCase();
        if (b !== "true" && b !== "false")
          throw new ReplayHeaderError(`elsewhere is ${v}, not true or false`);
        ask.elsewhere = b === "true";
        break;
      }
    }
  }
  return ask;
}

function nonEmpty(key: string, v: string): string {
  if (v === "") throw new ReplayHeaderError(`${key} is empty`);
  return v;
}

/**
 * The `fly-replay-src` header of a replayed request: the machine that asked, its region, when
 * (microseconds since the Unix epoch), and the ask's `state`.
 */
export function replaySource(
  machineId: string,
  region: string | undefined,
  state: string | undefined,
  nowMs: number,
): string {
  let src = `instance=${machineId}`;
  if (region !== undefined) src += `;region=${region}`;
  src += `;t=${Math.round(nowMs * 1000)}`;
  if (state !== undefined) src += `;state=${state}`;
  return src;
}

/**
 * The first `fly-replay` value in a raw header list, or undefined. Compares lengths before names:
 * every answer the proxy relays is scanned.
 */
export function findReplay(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 10 && name.toLowerCase() === "fly-replay") return raw[i + 1];
  }
  return undefined;
}

/**
 * Which of `target`'s machines a replay may go to (undefined: any), or why none: never one that
 * replayed the request already (`replayedBy`, `<app> <machine>`: that would be a loop), only
 * `instance`, only the first of `regions` with such a machine (`any`: every one), and
 * `prefer_instance` when it can take the request now. `by` names the machine that asked.
 */
export function replayTargets(
  target: AppState,
  ask: ReplayAsk,
  replayedBy: ReadonlySet<string>,
  by: string,
): ((b: BackendState) => boolean) | Refusal | undefined {
  const fresh = (b: BackendState): boolean => !replayedBy.has(`${target.app} ${b.machineId}`);
  const loop = (message: string): Refusal => ({ status: 508, code: "replay_loop", message, app: target.app });
  const unavailable = (message: string): Refusal => ({
    status: 503,
    code: "replay_target_unavailable",
    message,
    app: target.app,
    retryAfter: 1,
  });
  const instance = ask.instance;
  if (instance !== undefined) {
    if (replayedBy.has(`${target.app} ${instance}`)) {
      return loop(
        `replay loop: ${by} asked to replay the request to machine ${instance} of app ${target.app}, which had replayed it already`,
      );
    }
    if (!target.backends.some((b) => b.machineId === instance)) {
      return unavailable(
        `${by} asked to replay the request to machine ${instance} of app ${target.app} (fly-replay), which is not a started machine of it`,
      );
    }
    return (b) => b.machineId === instance;
  }
  let region: string | undefined;
  if (ask.regions !== undefined) {
    const found = ask.regions.find(
      (r) => r === "any" || target.backends.some((b) => b.region === r && fresh(b)),
    );
    if (found === undefined) {
      return unavailable(
        `${by} asked to replay the request to region ${ask.regions.join(",")} (fly-replay), where app ${target.app} has no started machine that could take it`,
      );
    }
    if (found !== "any") region = found;
  }
  const fits = (b: BackendState): boolean => fresh(b) && (region === undefined || b.region === region);
  if (target.backends.length > 0 && !target.backends.some(fits)) {
    return loop(
      `replay loop: ${by} asked to replay the request to app ${target.app} (fly-replay), and every machine of it that could take it had replayed it already`,
    );
  }
  const prefer = ask.preferInstance;
  const preferred = prefer === undefined ? undefined : target.backends.find((b) => b.machineId === prefer);
  if (preferred !== undefined && fits(preferred) && target.canTake(preferred)) return (b) => b === preferred;
  // Nothing to leave out: the request goes wherever the app's requests go (a sleeping app is woken).
  if (region === undefined && !target.backends.some((b) => !fresh(b))) return undefined;
  return fits;
}
