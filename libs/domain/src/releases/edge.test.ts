import { fold } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { liveEdgeRelease } from "./edge.js";
import { type ReleaseEvent, releaseDecider } from "./release.js";

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

const base = {
  releaseId: "",
  buildId: "",
  configJson: "{}",
  strategy: "immediate",
  description: "",
  maxUnavailable: "",
  waitTimeoutMs: 0,
  deployedBy: "",
  rollbackOf: 0,
  orchestrated: true,
};
const edge = (version: number, bundle = version): ReleaseEvent => ({
  type: "ReleaseCreated",
  data: {
    ...base,
    version,
    imageRef: "",
    edgeBundleDigest: digest(bundle),
    edgeCpuMs: 50,
    edgeMemoryMb: 128,
  },
});
const image = (version: number): ReleaseEvent => ({
  type: "ReleaseCreated",
  data: { ...base, version, imageRef: "registry.local/app@sha256:aa" },
});
const succeeded = (version: number): ReleaseEvent => ({
  type: "ReleaseSucceeded",
  data: { version, machineIds: [] },
});
const failed = (version: number): ReleaseEvent => ({
  type: "ReleaseFailed",
  data: { version, reason: "no", rolledBackTo: 0 },
});

const live = (events: ReleaseEvent[]) => {
  const r = liveEdgeRelease(fold(releaseDecider, events));
  return r && { version: r.version, digest: r.edge.bundleDigest };
};

describe("liveEdgeRelease", () => {
  it("is none for an app without releases or with image releases only", () => {
    expect(live([])).toBeUndefined();
    expect(live([image(1), succeeded(1), image(2)])).toBeUndefined();
  });

  it("is the newest edge release, from the moment it is appended", () => {
    expect(live([edge(1)])).toEqual({ version: 1, digest: digest(1) });
    expect(live([edge(1), succeeded(1), edge(2)])).toEqual({ version: 2, digest: digest(2) });
    expect(live([edge(1), succeeded(1), edge(2), succeeded(2)])).toEqual({ version: 2, digest: digest(2) });
  });

  it("passes over failed releases to the one before", () => {
    expect(live([edge(1), succeeded(1), edge(2), failed(2)])).toEqual({ version: 1, digest: digest(1) });
    expect(live([edge(1), failed(1)])).toBeUndefined();
  });

  it("is the rollback once one is appended: a new release with the earlier bundle", () => {
    const events = [edge(1), succeeded(1), edge(2), succeeded(2), edge(3, 1)];
    expect(live(events)).toEqual({ version: 3, digest: digest(1) });
  });

  it("ends when an image release has succeeded after it, and not before", () => {
    expect(live([edge(1), succeeded(1), image(2)])).toEqual({ version: 1, digest: digest(1) });
    expect(live([edge(1), succeeded(1), image(2), succeeded(2)])).toBeUndefined();
    expect(live([edge(1), succeeded(1), image(2), failed(2)])).toEqual({ version: 1, digest: digest(1) });
    // An edge release after the image one is live again.
    expect(live([edge(1), image(2), succeeded(2), edge(3)])).toEqual({ version: 3, digest: digest(3) });
  });
});
