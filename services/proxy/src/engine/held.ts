import type { BackendState } from "./backends.js";
import type { Refusal } from "./refusal.js";

/** A request or upgrade the proxy may have to hold until a machine can take it. */
export interface Held {
  /** The only machines it may go to (a replay's region or machine); undefined: any of the app's. */
  readonly only?: ((backend: BackendState) => boolean) | undefined;
  /** Sends it to `backend` now. */
  go(backend: BackendState): void;
  /** Answers it with a refusal instead. */
  refuse(r: Refusal): void;
}
