import { type DomainErrorCode, deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { currentRelease, inProgress, type ReleaseEvent, releaseDecider } from "./release.js";

const spec = deciderSpec(releaseDecider);

const create = {
  type: "CreateRelease" as const,
  releaseId: "r1",
  imageRef: "registry.local/hello@sha256:aa",
  configJson: "{}",
};
const created = (version: number, extra: Record<string, string | number | boolean> = {}): ReleaseEvent => ({
  type: "ReleaseCreated",
  data: {
    version,
    releaseId: `r${version}`,
    imageRef: "registry.local/hello@sha256:aa",
    buildId: "",
    configJson: "{}",
    strategy: "immediate",
    description: "",
    maxUnavailable: "",
    waitTimeoutMs: 0,
    deployedBy: "",
    rollbackOf: 0,
    orchestrated: false,
    ...extra,
  },
});
const succeeded = (version: number): ReleaseEvent => ({
  type: "ReleaseSucceeded",
  data: { version, machineIds: ["m1"] },
});
const failed = (version: number): ReleaseEvent => ({
  type: "ReleaseFailed",
  data: { version, reason: "checks failed", rolledBackTo: 0 },
});
const orchestrated = (version: number) => created(version, { orchestrated: true, strategy: "rolling" });
const started = (version: number, previousVersion = 0): ReleaseEvent => ({
  type: "ReleaseStarted",
  data: {
    version,
    groups: [{ group: "app", count: 2 }],
    previousVersion,
    previousGroups: [],
    startedAtMs: 1000,
  },
});
const start = (version: number) => ({
  type: "StartRelease" as const,
  version,
  groups: [{ group: "app", count: 2 }],
  previousVersion: 0,
  previousGroups: [],
  startedAtMs: 1000,
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

  it("checks an orchestrated release's strategy and max_unavailable", () => {
    spec
      .given([])
      .when({ ...create, orchestrated: true, strategy: "rolling", maxUnavailable: "0.33" })
      .then([created(1, { orchestrated: true, strategy: "rolling", maxUnavailable: "0.33" })]);
    spec
      .given([])
      .when({ ...create, orchestrated: true, strategy: "sideways" })
      .thenThrows(is("invalid_argument"));
    for (const bad of ["0", "-1", "1.5", "x"]) {
      spec
        .given([])
        .when({ ...create, orchestrated: true, strategy: "rolling", maxUnavailable: bad })
        .thenThrows(is("invalid_argument"));
    }
    spec
      .given([created(1)])
      .when({ ...create, orchestrated: true, strategy: "immediate", rollbackOf: 7 })
      .thenThrows(is("not_found"));
  });

  it("starts an orchestrated release once, and rolls a running one back before it fails", () => {
    spec
      .given([orchestrated(1)])
      .when(start(1))
      .then([started(1)]);
    // A restarted orchestrator starting it again changes nothing.
    spec
      .given([orchestrated(1), started(1)])
      .when(start(1))
      .then([]);
    spec
      .given([created(1)])
      .when(start(1))
      .thenThrows(is("failed_precondition"));
    spec
      .given([orchestrated(1)])
      .when({ type: "RollBackRelease", version: 1, reason: "x" })
      .thenThrows(is("failed_precondition"));
    const rollingBack: ReleaseEvent = {
      type: "ReleaseRollingBack",
      data: { version: 2, reason: "check failed" },
    };
    spec
      .given([orchestrated(1), started(1), succeeded(1), orchestrated(2), started(2, 1)])
      .when({ type: "RollBackRelease", version: 2, reason: "check failed" })
      .then([rollingBack]);
    spec
      .given([orchestrated(2), started(2, 1), rollingBack])
      .when({ type: "SucceedRelease", version: 2, machineIds: [] })
      .thenThrows(is("failed_precondition"));
    spec
      .given([orchestrated(2), started(2, 1), rollingBack])
      .when({ type: "FailRelease", version: 2, reason: "check failed", rolledBackTo: 1 })
      .then([{ type: "ReleaseFailed", data: { version: 2, reason: "check failed", rolledBackTo: 1 } }]);
    const state = fold(releaseDecider, [
      orchestrated(1),
      started(1),
      orchestrated(2),
      started(2, 1),
      rollingBack,
    ]);
    expect(state.releases.map((r) => r.status)).toEqual(["running", "rolling_back"]);
    expect(inProgress(state).map((r) => r.version)).toEqual([1, 2]);
    expect(state.releases[1]?.previousVersion).toBe(1);
    expect(state.releases[1]?.groups).toEqual([{ group: "app", count: 2 }]);
  });

  it("runs a release_command once per release, before the release starts", () => {
    const cmdStarted: ReleaseEvent = { type: "ReleaseCommandStarted", data: { version: 1, machineId: "m1" } };
    const finished: ReleaseEvent = {
      type: "ReleaseCommandFinished",
      data: { version: 1, machineId: "m1", exitCode: 3, reason: "" },
    };
    spec
      .given([orchestrated(1)])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "m1" })
      .then([cmdStarted]);
    // A new leader asking again changes nothing: the machine recorded first is the one.
    spec
      .given([orchestrated(1), cmdStarted])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "m2" })
      .then([]);
    spec
      .given([orchestrated(1), cmdStarted])
      .when({ type: "FinishReleaseCommand", version: 1, exitCode: 3, reason: "" })
      .then([finished]);
    spec
      .given([orchestrated(1), cmdStarted, finished])
      .when({ type: "FinishReleaseCommand", version: 1, exitCode: 0, reason: "" })
      .then([]);
    spec
      .given([orchestrated(1)])
      .when({ type: "FinishReleaseCommand", version: 1, exitCode: 0, reason: "" })
      .thenThrows(is("failed_precondition"));
    spec
      .given([orchestrated(1), started(1)])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "m1" })
      .thenThrows(is("failed_precondition"));
    const state = fold(releaseDecider, [orchestrated(1), cmdStarted, finished]);
    expect(state.releases[0]?.releaseCommand).toEqual({ machineId: "m1", exitCode: 3, reason: "" });
  });

  it("runs a seeded release's seed_command once, after its release_command exited 0, and only a seeded one's", () => {
    const seeded = created(1, { orchestrated: true, strategy: "rolling", seed: true });
    const seedStarted: ReleaseEvent = {
      type: "ReleaseCommandStarted",
      data: { version: 1, machineId: "s1", kind: "seed" },
    };
    const seedFinished: ReleaseEvent = {
      type: "ReleaseCommandFinished",
      data: { version: 1, machineId: "s1", exitCode: 0, reason: "", kind: "seed" },
    };
    spec
      .given([])
      .when({ ...create, orchestrated: true, strategy: "rolling", seed: true })
      .then([seeded]);
    // Only the platform runs it: a release its client carries out cannot be seeded.
    spec
      .given([])
      .when({ ...create, seed: true })
      .thenThrows(is("invalid_argument"));
    spec
      .given([seeded])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "s1", kind: "seed" })
      .then([seedStarted]);
    spec
      .given([orchestrated(1)])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "s1", kind: "seed" })
      .thenThrows(is("failed_precondition"));
    // After a release_command that has not exited 0: refused.
    const rcStarted: ReleaseEvent = { type: "ReleaseCommandStarted", data: { version: 1, machineId: "m1" } };
    spec
      .given([seeded, rcStarted])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "s1", kind: "seed" })
      .thenThrows(is("failed_precondition"));
    const rcDone: ReleaseEvent = {
      type: "ReleaseCommandFinished",
      data: { version: 1, machineId: "m1", exitCode: 0, reason: "" },
    };
    spec
      .given([seeded, rcStarted, rcDone])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "s1", kind: "seed" })
      .then([seedStarted]);
    spec
      .given([seeded, rcStarted, rcDone, seedStarted])
      .when({ type: "StartReleaseCommand", version: 1, machineId: "s2", kind: "seed" })
      .then([]);
    spec
      .given([seeded, seedStarted])
      .when({ type: "FinishReleaseCommand", version: 1, exitCode: 0, reason: "", kind: "seed" })
      .then([seedFinished]);
    // The release_command's run and the seed's are apart.
    spec
      .given([seeded, seedStarted])
      .when({ type: "FinishReleaseCommand", version: 1, exitCode: 0, reason: "" })
      .thenThrows(is("failed_precondition"));
    const state = fold(releaseDecider, [seeded, rcStarted, rcDone, seedStarted, seedFinished]);
    expect(state.releases[0]?.seed).toBe(true);
    expect(state.releases[0]?.releaseCommand).toEqual({ machineId: "m1", exitCode: 0, reason: "" });
    expect(state.releases[0]?.seedCommand).toEqual({ machineId: "s1", exitCode: 0, reason: "" });
  });

  it("records an edge release's bundle and limits instead of an image", () => {
    const digest = `sha256:${"ab".repeat(32)}`;
    const edge = { bundleDigest: digest, cpuMs: 50, memoryMb: 128 };
    spec
      .given([created(1), succeeded(1)])
      .when({ ...create, releaseId: "r2", imageRef: "", edge, orchestrated: true, strategy: "immediate" })
      .then([
        created(2, {
          imageRef: "",
          orchestrated: true,
          edgeBundleDigest: digest,
          edgeCpuMs: 50,
          edgeMemoryMb: 128,
        }),
      ]);
    const state = fold(releaseDecider, [
      created(1, { imageRef: "", edgeBundleDigest: digest, edgeCpuMs: 20, edgeMemoryMb: 64 }),
    ]);
    expect(state.releases[0]?.edge).toEqual({ bundleDigest: digest, cpuMs: 20, memoryMb: 64 });
    expect(fold(releaseDecider, [created(1)]).releases[0]?.edge).toBeNull();
    // An image and a bundle, a digest of another shape, or limits below 1 are refused.
    for (const bad of [
      { imageRef: "registry.local/hello@sha256:aa", edge },
      { imageRef: "", edge: { ...edge, bundleDigest: "sha256:zz" } },
      { imageRef: "", edge: { ...edge, bundleDigest: digest.slice(7) } },
      { imageRef: "", edge: { ...edge, cpuMs: 0 } },
      { imageRef: "", edge: { ...edge, memoryMb: 0.5 } },
    ])
      spec
        .given([])
        .when({ ...create, ...bad })
        .thenThrows(is("invalid_argument"));
  });
});
