import type { RequestContext } from "./backend.js";

export type ReleaseStatusView = "pending" | "running" | "rolling_back" | "succeeded" | "failed";

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
  /** Carried out by the platform (`deploy: true`), not by its client. */
  deploy: boolean;
  max_unavailable: string | null;
  /** Seconds each new machine has to be healthy; null for the default. */
  wait_timeout: number | null;
  /** Who created it: the kind and id of the token. */
  deployed_by: string;
  /** The release it redeploys, or null. */
  rollback_of: number | null;
  /** The release the app was returned to after this one failed, or null. */
  rolled_back_to: number | null;
  /** The release it replaced (set once it started), or null. */
  previous_version: number | null;
  /** Its [deploy] release_command's run, once started: the machine, and how it ended (null while it runs). */
  release_command: { machine_id: string; exit_code: number | null; error: string | null } | null;
  /** A first deploy by `hangar launch` (`seed: true`): its [deploy] seed_command runs after the release_command. */
  seed: boolean;
  /** Its seed_command's run, as release_command's. */
  seed_command: { machine_id: string; exit_code: number | null; error: string | null } | null;
  /** An edge app's release: the bundle the proxies run and its limits (`image` is then ""); null otherwise. */
  edge: { bundle: string; cpu_ms: number; memory_mb: number } | null;
}

/** A new release: `image`, or `build_id` whose image it defaults to. */
export interface CreateReleaseInput {
  image: string | undefined;
  buildId: string | undefined;
  config: Record<string, unknown> | undefined;
  strategy: string | undefined;
  description: string | undefined;
  deploy: boolean;
  maxUnavailable: string | undefined;
  waitTimeoutMs: number | undefined;
  rollbackOf: number | undefined;
  /** An edge app's bundle digest instead of an image. */
  edgeBundle: string | undefined;
  /** A first deploy by `hangar launch`: runs [deploy] seed_command (deploy only). */
  seed: boolean;
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
