/**
 * setTimeout and setInterval: the host waits (EdgeHost has no part in it), the callback runs here.
 * clearTimeout cancels the host's wait too, and at most TIMERS_MAX timers wait at once (the host
 * holds each one: bridge.ts EDGE_TIMERS_MAX).
 */

import { reportError } from "./console.js";
import { callHost, tellHost } from "./host.js";

const TIMERS_MAX = 1_000;
const live = new Set<number>();
let nextTimer = 1;

function later(id: number, ms: number, run: () => void): void {
  callHost("sleep", Math.max(0, Number(ms) || 0), id).then(() => {
    if (!live.has(id)) return;
    try {
      run();
    } catch (error) {
      reportError(error);
    }
  }, reportError);
}

function newTimer(): number {
  if (live.size >= TIMERS_MAX) throw new RangeError(`more than ${TIMERS_MAX} timers waiting at once`);
  const id = nextTimer++;
  live.add(id);
  return id;
}

export function setTimeout(callback: (...args: unknown[]) => void, ms = 0, ...args: unknown[]): number {
  if (typeof callback !== "function") throw new TypeError("setTimeout needs a function");
  const id = newTimer();
  later(id, ms, () => {
    live.delete(id);
    callback(...args);
  });
  return id;
}

export function setInterval(callback: (...args: unknown[]) => void, ms = 0, ...args: unknown[]): number {
  if (typeof callback !== "function") throw new TypeError("setInterval needs a function");
  const id = newTimer();
  const tick = () => {
    later(id, ms, tick);
    callback(...args);
  };
  later(id, ms, tick);
  return id;
}

export function clearTimer(id: number | undefined): void {
  if (id === undefined || !live.delete(id)) return;
  tellHost("cancelSleep", id);
}

export function queueMicrotask(callback: () => void): void {
  Promise.resolve()
    .then(callback)
    .catch((error: unknown) => reportError(error));
}
