import type { RequestContext } from "./backend.js";

export type ReleaseStatusView = "pending" | "succeeded" | "failed";

/** One release of an app. */
export interface ReleaseView {
  version: number;
  id: string;
  status: ReleaseStatusView;
  image: string;
  build_id: string | null;
  description: string;
  /** Why it failed; null unless failed. */
  reason: string | null;
  strategy: string;
  machine_ids: string[];
  /** The app config the release runs with, as sent. */
  config: Record<string, unknown> | null;
  /** RFC 3339: when the release was created. */
  created_at: string;
}

/** A new release: `image`, or `build_id` whose image it defaults to. */
export interface CreateReleaseInput {
  image: string | undefined;
  buildId: string | undefined;
  config: Record<string, unknown> | undefined;
  strategy: string | undefined;
  description: string | undefined;
}

/** How a release ended. */
export type ReleaseOutcome =
  | { status: "succeeded"; machineIds: string[] }
  | { status: "failed"; reason: string };

/** What the releases API needs from the platform; failures are ApiErrors. */
export interface ReleasesBackend {
  createRelease(app: string, input: CreateReleaseInput, ctx: RequestContext): Promise<ReleaseView>;
  /** Ends a pending release; a release that already ended is a 412 (failed_precondition). */
  endRelease(
    app: string,
    version: number,
    outcome: ReleaseOutcome,
    ctx: RequestContext,
  ): Promise<ReleaseView>;
  /** Newest first. */
  listReleases(app: string, ctx: RequestContext): Promise<ReleaseView[]>;
  getRelease(app: string, version: number, ctx: RequestContext): Promise<ReleaseView>;
}
