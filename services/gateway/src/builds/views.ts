import type { BuildEvent } from "@hangar/domain";
import type { hangar } from "@hangar/proto";
import type { BuildErrorView, BuildEventView, BuildStepView, BuildView } from "../http/builds-backend.js";
import type { BuildRecord } from "./catalog.js";

function stepView(s: hangar.v1.IBuildStepFinished): BuildStepView {
  return {
    step: s.step ?? 0,
    steps: s.steps ?? 0,
    stage: s.stage ?? 0,
    stage_name: s.stageName ?? "",
    line: s.line ?? 0,
    instruction: s.instruction ?? "",
    cached: s.cached ?? false,
    layer_digest: s.layerDigest ?? "",
    duration_ms: s.durationMs ?? 0,
    output: s.output ?? "",
  };
}

function errorView(f: hangar.v1.IBuildFailed): BuildErrorView {
  return {
    message: f.message ?? "",
    line: f.line ?? 0,
    instruction: f.instruction ?? "",
    output: f.output ?? "",
    ...(f.reason ? { reason: f.reason } : {}),
  };
}

/** A build as the API shows it. */
export function toBuildView(r: BuildRecord): BuildView {
  const s = r.state;
  const steps = s.steps.map(stepView);
  const result = s.result;
  return {
    id: s.request.buildId ?? "",
    app: s.request.app ?? "",
    status: s.status,
    created_at: new Date(r.createdAtMs).toISOString(),
    steps,
    image_ref: result?.imageRef ?? null,
    manifest_digest: result?.manifestDigest ?? null,
    cached_steps: result?.cachedSteps ?? steps.filter((x) => x.cached).length,
    total_steps: result?.totalSteps ?? steps.at(-1)?.steps ?? 0,
    duration_ms: result?.durationMs ?? s.failure?.durationMs ?? null,
    ...(s.failure ? { error: errorView(s.failure) } : {}),
  };
}

/** One stored build event as a line of the events stream. */
export function toBuildEventView(e: BuildEvent): BuildEventView {
  switch (e.type) {
    case "BuildRequested":
      return { type: "requested" };
    case "BuildStarted":
      return { type: "started", builder_id: e.data.builderId ?? "" };
    case "BuildStepFinished":
      return { type: "step", ...stepView(e.data) };
    case "BuildSucceeded":
      return {
        type: "succeeded",
        image_ref: e.data.imageRef ?? "",
        manifest_digest: e.data.manifestDigest ?? "",
        cached_steps: e.data.cachedSteps ?? 0,
        total_steps: e.data.totalSteps ?? 0,
        duration_ms: e.data.durationMs ?? 0,
      };
    case "BuildFailed":
      return { type: "failed", ...errorView(e.data) };
  }
}

/** True for the event that ends a build. */
export function endsBuild(e: BuildEvent): boolean {
  return e.type === "BuildSucceeded" || e.type === "BuildFailed";
}
