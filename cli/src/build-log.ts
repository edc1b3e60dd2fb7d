import { setTimeout as sleep } from "node:timers/promises";
import type { ApiClient } from "./api.js";
import type { Build, BuildFailure, BuildStep } from "./types.js";

/** How a build ended. */
export type BuildOutcome =
  | {
      status: "succeeded";
      imageRef: string;
      manifestDigest?: string;
      cachedSteps: number;
      totalSteps: number;
      durationMs?: number;
    }
  | { status: "failed"; failure: BuildFailure };

/** The part of the API a build log needs. */
export type BuildLogApi = Pick<ApiClient, "buildEvents" | "getBuild">;

/** "0.4s", "12.3s", "2m05s". */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

function outputLines(output: string | string[] | undefined): string[] {
  const lines = Array.isArray(output) ? output : (output ?? "").split("\n");
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** A finished step: `[3/7] build: RUN npm ci  4.2s` (or `CACHED`), then what a RUN printed, indented. */
export function formatStep(step: BuildStep): string {
  const stage = step.stage ? ` ${step.stage}:` : "";
  const took = step.cached
    ? "CACHED"
    : step.duration_ms !== undefined
      ? formatDuration(step.duration_ms)
      : "";
  let text = `[${step.step}/${step.steps}]${stage} ${step.instruction}${took ? `  ${took}` : ""}\n`;
  if (!step.cached) for (const line of outputLines(step.output)) text += `  | ${line}\n`;
  return text;
}

/** Where and why a build failed, with what the instruction printed. */
export function formatFailure(failure: BuildFailure): string {
  const where = failure.line !== undefined ? ` at Dockerfile line ${failure.line}` : "";
  let text = `Build failed${where}${failure.instruction ? `: ${failure.instruction}` : ""}\n`;
  for (const line of outputLines(failure.output)) text += `  | ${line}\n`;
  return `${text}${failure.message}\n`;
}

function outcomeOf(build: Build): BuildOutcome | undefined {
  if (build.status === "failed")
    return { status: "failed", failure: build.error ?? { message: "build failed" } };
  if (build.status !== "succeeded") return undefined;
  const steps = build.steps ?? [];
  return {
    status: "succeeded",
    imageRef: build.image_ref ?? "",
    ...(build.manifest_digest ? { manifestDigest: build.manifest_digest } : {}),
    cachedSteps: steps.filter((s) => s.cached).length,
    totalSteps: steps.length,
  };
}

/**
 * Prints a build's steps as they finish and resolves to how it ended. Should the event stream end before
 * the build does, the build is polled until it ends, and the steps not printed yet are printed from it.
 */
export async function followBuild(
  api: BuildLogApi,
  app: string,
  id: string,
  write: (text: string) => void,
  pollMs = 1000,
): Promise<BuildOutcome> {
  const printed = new Set<number>();
  const print = (step: BuildStep) => {
    if (printed.has(step.step)) return;
    printed.add(step.step);
    write(formatStep(step));
  };
  for await (const event of api.buildEvents(app, id)) {
    if (event.type === "step") print(event);
    else if (event.type === "failed") return { status: "failed", failure: event };
    else if (event.type === "succeeded") {
      return {
        status: "succeeded",
        imageRef: event.image_ref,
        ...(event.manifest_digest ? { manifestDigest: event.manifest_digest } : {}),
        cachedSteps: event.cached_steps ?? 0,
        totalSteps: event.total_steps ?? printed.size,
        ...(event.duration_ms !== undefined ? { durationMs: event.duration_ms } : {}),
      };
    }
  }
  for (;;) {
    const build = await api.getBuild(app, id);
    for (const step of build.steps ?? []) print(step);
    const outcome = outcomeOf(build);
    if (outcome) return outcome;
    await sleep(pollMs);
  }
}
