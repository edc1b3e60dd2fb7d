import type { BackendState } from "./backends.js";
import type { Refusal } from "./refusal.js";

/** A request or upgrade the proxy may have to hold until a machine can take it. */
export interface Held {
  /** Sends it to `backend` now. */
  go(backend: BackendState): void;
  /** Answers it with a refusal instead. */
  refuse(r: Refusal): void;
}
