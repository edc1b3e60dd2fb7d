import { type DomainErrorCode, deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { currentRelease, type ReleaseEvent, releaseDecider } from "./release.js";

const spec = deciderSpec(releaseDecider);

const create = {
  type: "CreateRelease" as const,
  releaseId: "r1",
  imageRef: "registry.local/hello@sha256:aa",
  configJson: "{}",
};
const created = (version: number, extra: Record<string, string> = {}): ReleaseEvent => ({
  type: "ReleaseCreated",
  data: {
    version,
    releaseId: `r${version}`,
    imageRef: "registry.local/hello@sha256:aa",
    buildId: "",
    configJson: "{}",
    strategy: "immediate",
    description: "",
    ...extra,
  },
});
const succeeded = (version: number): ReleaseEvent => ({
  type: "ReleaseSucceeded",
  data: { version, machineIds: ["m1"] },
});
const failed = (version: number): ReleaseEvent => ({
  type: "ReleaseFailed",
  data: { version, reason: "checks failed" },
});

const is = (code: DomainErrorCode) => (e: unknown) => isDomainError(e, code);

describe("release decider", () => {
  it("numbers releases 1, 2, ... with defaults for what was not given", () => {
    spec
      .given([])
      .when(create)
      .then([created(1)]);
    spec
      .given([created(1), succeeded(1)])
      .when({ ...create, releaseId: "r2", buildId: "b1", strategy: "rolling", description: "second" })
      .then([created(2, { buildId: "b1", strategy: "rolling", description: "second" })]);
  });

  it("refuses a release without an image", () => {
    spec
      .given([])
      .when({ ...create, imageRef: "" })
      .thenThrows(is("invalid_argument"));
  });

  it("ends a pending release once, as succeeded or failed", () => {
    spec
      .given([created(1)])
      .when({ type: "SucceedRelease", version: 1, machineIds: ["m1"] })
      .then([succeeded(1)]);
    spec
      .given([created(1)])
      .when({ type: "FailRelease", version: 1, reason: "checks failed" })
      .then([failed(1)]);
    spec
      .given([created(1), succeeded(1)])
      .when({ type: "SucceedRelease", version: 1, machineIds: [] })
      .thenThrows(is("failed_precondition"));
    spec
      .given([created(1), failed(1)])
      .when({ type: "SucceedRelease", version: 1, machineIds: [] })
      .thenThrows(is("failed_precondition"));
  });

  it("refuses to end a release that does not exist", () => {
    spec
      .given([created(1)])
      .when({ type: "FailRelease", version: 2, reason: "x" })
      .thenThrows(is("not_found"));
  });

  it("lets an older pending release end after a newer one started", () => {
    spec
      .given([created(1), created(2)])
      .when({ type: "FailRelease", version: 1, reason: "checks failed" })
      .then([failed(1)]);
  });

  it("serves the newest release that succeeded", () => {
    const state = fold(releaseDecider, [created(1), succeeded(1), created(2), failed(2), created(3)]);
    expect(state.releases.map((r) => r.status)).toEqual(["succeeded", "failed", "pending"]);
    expect(state.releases[0]?.machineIds).toEqual(["m1"]);
    expect(state.releases[1]?.reason).toBe("checks failed");
    expect(currentRelease(state)?.version).toBe(1);
    expect(currentRelease(fold(releaseDecider, [created(1)]))).toBeUndefined();
  });
});
