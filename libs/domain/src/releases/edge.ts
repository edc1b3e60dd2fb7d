import type { Release, ReleaseEdge, ReleasesState } from "./release.js";

/** An edge release: one whose `edge` is set (it runs a bundle in the proxies, and has no machines). */
export type EdgeRelease = Release & { edge: ReleaseEdge };

/** Whether the release runs an edge bundle instead of an image. */
export function isEdgeRelease(release: Release): release is EdgeRelease {
  return release.edge !== null;
}

/**
 * The app's live edge release: what every proxy runs for the app's hostname. It is the newest release
 * with an edge bundle that has not failed, pending ones included (an edge release has no machines to
 * wait for, so a proxy need not wait for the orchestrator to end it; a rollback takes effect as soon
 * as it is appended). An image release that succeeded after it ends the edge app (the app's machines
 * serve again); one still rolling out leaves the edge release live until it has.
 */
export function liveEdgeRelease(state: ReleasesState): EdgeRelease | undefined {
  for (let i = state.releases.length - 1; i >= 0; i--) {
    const r = state.releases[i] as Release;
    if (r.status === "failed") continue;
    if (isEdgeRelease(r)) return r;
    if (r.status === "succeeded") return undefined;
  }
  return undefined;
}
