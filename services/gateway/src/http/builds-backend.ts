import type { RequestContext } from "./backend.js";

/** A build's status as the API shows it. */
export type BuildStatusView = "requested" | "running" | "succeeded" | "failed";

/** One finished Dockerfile instruction. */
export interface BuildStepView {
  /** Index across the whole build, from 1, and how many steps there are. */
  step: number;
  steps: number;
  stage: number;
  stage_name: string;
  /** Dockerfile line. */
  line: number;
  instruction: string;
  cached: boolean;
  layer_digest: string;
  duration_ms: number;
  output: string;
}

/** Why a build failed. */
export interface BuildErrorView {
  message: string;
  /** Dockerfile line of the failing instruction; 0 when the failure is not tied to one. */
  line: number;
  instruction: string;
  output: string;
  /** "cancelled" or "timed_out" when the build was stopped from outside; absent otherwise. */
  reason?: string;
}

/** A build; image_ref, manifest_digest and duration_ms are null until it ends. */
export interface BuildView {
  id: string;
  app: string;
  status: BuildStatusView;
  /** RFC 3339: when the build was requested. */
  created_at: string;
  steps: BuildStepView[];
  image_ref: string | null;
  manifest_digest: string | null;
  cached_steps: number;
  total_steps: number;
  duration_ms: number | null;
  error?: BuildErrorView;
}

/** One line of a build's NDJSON event stream. */
export type BuildEventView =
  | { type: "requested" }
  | { type: "started"; builder_id: string }
  | ({ type: "step" } & BuildStepView)
  | {
      type: "succeeded";
      image_ref: string;
      manifest_digest: string;
      cached_steps: number;
      total_steps: number;
      duration_ms: number;
    }
  | ({ type: "failed" } & BuildErrorView);

/** How to build, from the query of `POST /v1/apps/{app}/builds`. */
export interface BuildOptions {
  /** Path of the Dockerfile inside the context; undefined for the builder's default. */
  dockerfile: string | undefined;
  target: string | undefined;
  noCache: boolean;
  /** Accepted for older clients: RUN steps have network by default now. */
  network: boolean;
  buildArgs: Record<string, string>;
  /** The build's deadline in seconds (at most the builder's own); undefined: the builder's. */
  timeoutSeconds: number | undefined;
  /** Secrets for RUN --mount=type=secret, by id (hangar deploy --build-secret); sealed before they are recorded. */
  secrets?: Record<string, string>;
}

/** The request body of a build: the context tar, as a stream. */
export interface BuildContextUpload {
  body: ReadableStream<Uint8Array> | null;
  /** The declared content-length, when the client sent one: lets an oversized context be refused unread. */
  length: number | undefined;
}

/** What the builds API needs from the platform; failures are ApiErrors. */
export interface BuildsBackend {
  /** Stores the context tar (streamed, size-limited) and requests its build. */
  createBuild(
    app: string,
    upload: BuildContextUpload,
    opts: BuildOptions,
    ctx: RequestContext,
  ): Promise<BuildView>;
  /** Newest first. */
  listBuilds(app: string, ctx: RequestContext): Promise<BuildView[]>;
  getBuild(app: string, buildId: string, ctx: RequestContext): Promise<BuildView>;
  /** Cancels a build not yet over: it fails with reason "cancelled" and its builder stops it. */
  cancelBuild(app: string, buildId: string, ctx: RequestContext): Promise<BuildView>;
  /**
   * The build's events from the first, in order. With `follow` it goes on with live events until
   * the build ends or `ctx.signal` aborts; without, it ends with the events stored so far.
   * Throws (before the first event) when the build is unknown.
   */
  buildEvents(
    app: string,
    buildId: string,
    opts: { follow: boolean },
    ctx: RequestContext,
  ): Promise<AsyncIterable<BuildEventView>>;
}
