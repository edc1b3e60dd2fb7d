/**
 * The edge runtime's contract: what the proxy, `hangar edge dev` and `hangar edge test` (the
 * embedders) hand an edge app, and what the app's code may reach through them. The runtime itself
 * (V8 isolates through isolated-vm) lives in ./runtime; nothing here depends on it.
 *
 * Bodies cross the isolate boundary whole (at most EDGE_BODY_MAX_BYTES each way).
 */

/** A request as the runtime takes it: `url` is absolute (`http://<host><path>`). */
export interface EdgeHttpRequest {
  method: string;
  url: string;
  /** In order, names lower-case, repeated names kept. */
  headers: [string, string][];
  body?: Uint8Array;
}

/** What the app answered, or what a fetch of its got. */
export interface EdgeHttpResponse {
  status: number;
  statusText?: string;
  headers: [string, string][];
  body: Uint8Array;
}

/** The largest request or response body that crosses into or out of an isolate. */
export const EDGE_BODY_MAX_BYTES = 10 * 1024 * 1024;

/** Per app: CPU time per request, the isolate's heap, and the wall time a request may take. */
export interface EdgeLimits {
  cpuMs: number;
  memoryMb: number;
  wallMs: number;
}

export const EDGE_DEFAULT_LIMITS: Readonly<EdgeLimits> = Object.freeze({
  cpuMs: 50,
  memoryMb: 128,
  wallMs: 30_000,
});

/** An app's code as released: one script made by the bundler; `digest` is `sha256:<hex>` of `code` (UTF-8). */
export interface EdgeBundle {
  digest: string;
  code: string;
}

/** What an app sees of where it runs: `app.env`, and its env vars and secrets as `env`. */
export interface EdgeAppEnv {
  appEnv: "development" | "production";
  vars: Record<string, string>;
}

export type EdgeLogLevel = "debug" | "info" | "warn" | "error";

/** Where an overlay goes on an image. */
export type EdgeImageGravity =
  | "center"
  | "north"
  | "northeast"
  | "east"
  | "southeast"
  | "south"
  | "southwest"
  | "west"
  | "northwest";

/** One image operation; the host (sharp) applies them in order. */
export type EdgeImageOp =
  | {
      op: "resize";
      width?: number;
      height?: number;
      /** How the image fits the box (sharp's fit): `cover` crops, `inside` keeps it whole. Default cover. */
      fit?: "cover" | "contain" | "fill" | "inside" | "outside";
      /** Never make the image larger than it is. */
      withoutEnlargement?: boolean;
    }
  /** Another image (bytes) laid over this one: a watermark. */
  | {
      op: "overlay";
      image: Uint8Array;
      gravity?: EdgeImageGravity;
      top?: number;
      left?: number;
      tile?: boolean;
    }
  | { op: "rotate"; angle: number }
  | { op: "flip" }
  | { op: "flop" }
  | { op: "grayscale" }
  | { op: "blur"; sigma: number }
  /** The output's format (default: the input's). */
  | { op: "format"; format: "jpeg" | "png" | "webp" | "avif"; quality?: number };

/** An image the host made: its bytes and what they are. */
export interface EdgeImageResult {
  body: Uint8Array;
  format: string;
  width: number;
  height: number;
}

/**
 * What an app's code may reach, supplied by the embedder. The runtime passes the app's name on
 * every call and never lets the code choose it: scoping (whose cache, whose logs) is the host's.
 */
export interface EdgeHost {
  /** An outbound fetch: `<app>.internal` through the proxy's balancing, anything else to the network the embedder allows. */
  fetch(app: string, req: EdgeHttpRequest, signal: AbortSignal): Promise<EdgeHttpResponse>;
  /** console.* of the app's code. */
  log(app: string, level: EdgeLogLevel, message: string): void;
  /** The app's cache (`fly.cache`): shared by every worker of the edge, never by two apps. */
  cacheGet(app: string, key: string): Promise<Uint8Array | undefined>;
  cacheSet(app: string, key: string, value: Uint8Array, ttlSeconds?: number): Promise<void>;
  cacheDelete(app: string, key: string): Promise<boolean>;
  /**
   * Image operations (`@fly/image`), done by the host with sharp (libs/edge's transformImage); a host
   * without it leaves image operations out of its apps' reach.
   */
  image?(app: string, input: Uint8Array, ops: EdgeImageOp[]): Promise<EdgeImageResult>;
}

export type EdgeErrorCode =
  /** The request used more CPU time than the app's limit. */
  | "cpu_limit"
  /** The isolate's heap went over the app's limit; the isolate is thrown away and made again. */
  | "memory_limit"
  /** The request took longer than the wall limit (waiting on fetches included). */
  | "wall_limit"
  /** The handler threw or its promise rejected. */
  | "uncaught"
  /** The code registered no handler (neither fly.http.respondWith nor a default export with fetch). */
  | "no_handler"
  /** The handler answered something that is not a Response. */
  | "bad_response"
  /** No release of the app is loaded here. */
  | "not_deployed"
  /** The bundle did not compile or threw while loading. */
  | "compile";

/** Why a request to an edge app got no answer from its code; `status` is what the client gets. */
export class EdgeError extends Error {
  readonly code: EdgeErrorCode;
  readonly status: number;
  constructor(code: EdgeErrorCode, message: string, status = edgeErrorStatus(code)) {
    super(message);
    this.name = "EdgeError";
    this.code = code;
    this.status = status;
  }
}

export function edgeErrorStatus(code: EdgeErrorCode): number {
  switch (code) {
    case "cpu_limit":
    case "memory_limit":
    case "wall_limit":
      return 503;
    case "not_deployed":
      return 404;
    default:
      return 500;
  }
}

/** What the proxy and the dev server call. One runtime serves many apps, one isolate each. */
export interface EdgeRuntimeLike {
  /** Compiles the bundle in a fresh isolate and makes it the app's; the previous one serves until then. */
  deploy(app: string, bundle: EdgeBundle, env: EdgeAppEnv, limits?: Partial<EdgeLimits>): Promise<void>;
  /** The digest the app serves now, if any. */
  current(app: string): string | undefined;
  /** Runs the app's handler; rejects with EdgeError when the code gives no answer. */
  dispatch(app: string, req: EdgeHttpRequest): Promise<EdgeHttpResponse>;
  remove(app: string): void;
  dispose(): Promise<void>;
}
