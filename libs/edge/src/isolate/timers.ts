/** setTimeout and setInterval: the host waits (EdgeHost has no part in it), the callback runs here. */

import { reportError } from "./console.js";
import { callHost } from "./host.js";

const live = new Set<number>();
let nextTimer = 1;

function later(id: number, ms: number, run: () => void): void {
  callHost("sleep", Math.max(0, Number(ms) || 0)).then(() => {
    if (!live.has(id)) return;
    try {
      run();
    } catch (error) {
      reportError(error);
    }
  });
}

export function setTimeout(callback: (...args: unknown[]) => void, ms = 0, ...args: unknown[]): number {
  if (typeof callback !== "function") throw new TypeError("setTimeout needs a function");
  const id = nextTimer++;
  live.add(id);
  later(id, ms, () => {
    live.delete(id);
    callback(...args);
  });
  return id;
}

export function setInterval(callback: (...args: unknown[]) => void, ms = 0, ...args: unknown[]): number {
  if (typeof callback !== "function") throw new TypeError("setInterval needs a function");
  const id = nextTimer++;
  live.add(id);
  const tick = () => {
    later(id, ms, tick);
    callback(...args);
  };
  later(id, ms, tick);
  return id;
}

export function clearTimer(id: number | undefined): void {
  if (id !== undefined) live.delete(id);
}

export function queueMicrotask(callback: () => void): void {
  Promise.resolve()
    .then(callback)
    .catch((error: unknown) => reportError(error));
}
