import type { ResponseRules, ScalingSettings } from "@hangar/config";
import type { AppStatics } from "../statics/static-files.js";

/** One started, non-cordoned machine that can take requests for an app. */
export interface Backend {
  machineId: string;
  /** IP address the machine listens on. */
  address: string;
  port: number;
  region?: string;
}

/** A stopped or suspended machine of an app: what a request may wake (autostart). */
export interface SleepingMachine {
  machineId: string;
  region: string;
  status: "stopped" | "suspended";
}

/** Where an app's requests may go; `backends` is empty when the app exists but nothing can serve it. */
export interface AppRoute {
  app: string;
  backends: Backend[];
  /**
   * The app's organization: a machine's `fly-replay` may send a request to another app only when
   * both are known to be in the same one. None: it replays to no other app and none to it.
   */
  org?: string;
  /** How machines are loaded and whether requests may wake them. Default: Fly's (DEFAULT_SCALING). */
  settings?: ScalingSettings;
  /** Machines a request may start when nothing started can take it. Default: none. */
  sleeping?: readonly SleepingMachine[];
  /** Machines being started now (by this proxy, another one, or the autoscaler). Default: none. */
  starting?: readonly string[];
  /** The `[[statics]]` the proxy serves itself, from the files taken out of the app's image. Default: none. */
  statics?: AppStatics;
  /** Headers set or removed on its responses (fly.toml http_options.response). Default: none. */
  response?: ResponseRules;
  /** Its responses are compressed for clients that accept it (fly.toml http_options.compress). Default: no. */
  compress?: boolean;
  /**
   * Seconds a client connection to it may stay idle (no request in flight, or an upgraded connection
   * with no bytes either way) before the proxy closes it (fly.toml http_options.idle_timeout).
   * Default: none (node's keep-alive timeout between requests, none on upgraded connections).
   */
  idleTimeout?: number;
}

/** The proxy's view of routable apps; it may change between any two requests. */
export interface RouteTable {
  lookup(app: string): AppRoute | undefined;
  /**
   * Calls `listener` with an app's name whenever its route may have changed; returns the way to stop.
   * Requests held for a machine (hard limit, wake) go on from here: without it they wait for a freed
   * slot or time out.
   */
  onChange?(listener: (app: string) => void): () => void;
  /** The last MACHINES stream sequence the table has folded (0 when it does not follow a stream). */
  readonly machinesSeq?: number;
}
