import { type DomainErrorCode, deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { type BuildEvent, buildDecider, buildIsOver } from "./build.js";

const spec = deciderSpec(buildDecider);

const request = {
  buildId: "01JBUILD0000000000000000AA",
  app: "hello",
  contextObject: "01JBUILD0000000000000000AA",
  contextDigest: `sha256:${"ab".repeat(32)}`,
  dockerfile: "Dockerfile",
  buildArgs: { VERSION: "1" },
  repository: "hello",
  tag: "deployment-01JBUILD0000000000000000AA",
};
const requested: BuildEvent = { type: "BuildRequested", data: request };
const started: BuildEvent = { type: "BuildStarted", data: { builderId: "b1" } };
const step = { stage: 0, step: 1, steps: 2, line: 1, instruction: "FROM scratch", cached: false };
const stepFinished: BuildEvent = { type: "BuildStepFinished", data: step };
const result = {
  imageRef: "hello:deployment-01JBUILD0000000000000000AA@sha256:cd",
  manifestDigest: "sha256:cd",
  durationMs: 1200,
  cachedSteps: 0,
  totalSteps: 2,
};
const succeeded: BuildEvent = { type: "BuildSucceeded", data: result };
const failure = { message: "RUN exited with 2", line: 3, instruction: "RUN false", output: "boom" };
const failed: BuildEvent = { type: "BuildFailed", data: failure };

const is = (code: DomainErrorCode) => (e: unknown) => isDomainError(e, code);

describe("build decider", () => {
  it("records a request once, and only a complete one", () => {
    spec.given([]).when({ type: "RequestBuild", request }).then([requested]);
    spec.given([requested]).when({ type: "RequestBuild", request }).thenThrows(is("already_exists"));
    for (const missing of ["buildId", "app", "contextObject"] as const) {
      spec
        .given([])
        .when({ type: "RequestBuild", request: { ...request, [missing]: "" } })
        .thenThrows(is("invalid_argument"));
    }
  });

  it("refuses work on a build never requested", () => {
    spec.given([]).when({ type: "StartBuild", builderId: "b1" }).thenThrows(is("not_found"));
    spec.given([]).when({ type: "FailBuild", failure }).thenThrows(is("not_found"));
  });

  it("lets one builder take a requested build, and no second one", () => {
    spec.given([requested]).when({ type: "StartBuild", builderId: "b1" }).then([started]);
    spec
      .given([requested, started])
      .when({ type: "StartBuild", builderId: "b2" })
      .thenThrows((e) => is("failed_precondition")(e) && /taken by b1/.test((e as Error).message));
  });

  it("records steps and success only while running", () => {
    spec.given([requested]).when({ type: "FinishStep", step }).thenThrows(is("failed_precondition"));
    spec.given([requested]).when({ type: "SucceedBuild", result }).thenThrows(is("failed_precondition"));
    spec.given([requested, started]).when({ type: "FinishStep", step }).then([stepFinished]);
    spec.given([requested, started, stepFinished]).when({ type: "SucceedBuild", result }).then([succeeded]);
  });

  it("fails a build before or after a builder took it", () => {
    spec.given([requested]).when({ type: "FailBuild", failure }).then([failed]);
    spec.given([requested, started, stepFinished]).when({ type: "FailBuild", failure }).then([failed]);
  });

  it("takes nothing more once the build is over", () => {
    for (const end of [succeeded, failed]) {
      const history = end === succeeded ? [requested, started, end] : [requested, end];
      spec.given(history).when({ type: "FinishStep", step }).thenThrows(is("failed_precondition"));
      spec.given(history).when({ type: "FailBuild", failure }).thenThrows(is("failed_precondition"));
      spec.given(history).when({ type: "StartBuild", builderId: "b2" }).thenThrows(is("failed_precondition"));
    }
  });

  it("folds into the build's status, steps and outcome", () => {
    const running = fold(buildDecider, [requested, started, stepFinished]);
    expect(running).toMatchObject({ status: "running", builderId: "b1", steps: [step] });
    expect(buildIsOver(running)).toBe(false);
    const done = fold(buildDecider, [requested, started, stepFinished, succeeded]);
    expect(done).toMatchObject({ status: "succeeded", result });
    expect(buildIsOver(done)).toBe(true);
    expect(fold(buildDecider, [requested, failed])).toMatchObject({ status: "failed", failure });
  });
});
