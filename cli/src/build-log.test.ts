import { describe, expect, it } from "vitest";
import { parseNdjson } from "./api.js";
import { type BuildLogApi, followBuild, formatDuration, formatFailure, formatStep } from "./build-log.js";
import type { Build, BuildEvent } from "./types.js";

const STEP = {
  step: 3,
  steps: 5,
  stage: "build",
  line: 4,
  instruction: "RUN npm ci",
  cached: false,
  duration_ms: 4210,
};

describe("formatting", () => {
  it("shows each step with CACHED or its duration, and what a RUN printed", () => {
    expect(formatStep({ ...STEP, output: "added 12 packages\nfound 0 vulnerabilities\n" })).toBe(
      "[3/5] build: RUN npm ci  4.2s\n  | added 12 packages\n  | found 0 vulnerabilities\n",
    );
    expect(
      formatStep({ step: 1, steps: 5, instruction: "FROM node:20", cached: true, output: ["ignored"] }),
    ).toBe("[1/5] FROM node:20  CACHED\n");
    expect(formatDuration(125_000)).toBe("2m05s");
  });

  it("shows the line, instruction and output of a failure", () => {
    expect(
      formatFailure({ message: "exit code 1", line: 6, instruction: "RUN npm test", output: ["1 failing"] }),
    ).toBe("Build failed at Dockerfile line 6: RUN npm test\n  | 1 failing\nexit code 1\n");
  });
});

function fakeApi(events: BuildEvent[], builds: Build[] = []): BuildLogApi & { gets: number } {
  const api = {
    gets: 0,
    async *buildEvents() {
      yield* events;
    },
    async getBuild() {
      const build = builds[Math.min(api.gets, builds.length - 1)] as Build;
      api.gets++;
      return build;
    },
  };
  return api as unknown as BuildLogApi & { gets: number };
}

describe("followBuild", () => {
  it("prints steps as they come and ends with the succeeded event", async () => {
    let out = "";
    const api = fakeApi([
      { type: "requested" },
      { type: "started" },
      { type: "step", ...STEP },
      {
        type: "succeeded",
        image_ref: "reg/web@sha256:1",
        cached_steps: 2,
        total_steps: 5,
        duration_ms: 9000,
      },
    ]);
    const outcome = await followBuild(api, "web", "b1", (t) => {
      out += t;
    });
    expect(out).toBe("[3/5] build: RUN npm ci  4.2s\n");
    expect(outcome).toEqual({
      status: "succeeded",
      imageRef: "reg/web@sha256:1",
      cachedSteps: 2,
      totalSteps: 5,
      durationMs: 9000,
    });
  });

  it("returns the failure event", async () => {
    const failed = {
      type: "failed" as const,
      message: "exit 2",
      line: 3,
      instruction: "RUN false",
      output: "",
    };
    const outcome = await followBuild(fakeApi([failed]), "web", "b1", () => {});
    expect(outcome).toEqual({ status: "failed", failure: failed });
  });

  it("polls the build when the stream ends early, printing only the steps not printed yet", async () => {
    let out = "";
    const first = { ...STEP, step: 1, instruction: "FROM node:20", cached: true };
    const running: Build = { id: "b1", app: "web", status: "running", steps: [first] };
    const done: Build = {
      id: "b1",
      app: "web",
      status: "succeeded",
      steps: [first, STEP],
      image_ref: "reg/web@sha256:2",
    };
    const api = fakeApi([{ type: "step", ...first }], [running, done]);
    const outcome = await followBuild(
      api,
      "web",
      "b1",
      (t) => {
        out += t;
      },
      1,
    );
    expect(out).toBe("[1/5] build: FROM node:20  CACHED\n[3/5] build: RUN npm ci  4.2s\n");
    expect(outcome).toEqual({
      status: "succeeded",
      imageRef: "reg/web@sha256:2",
      cachedSteps: 1,
      totalSteps: 2,
    });
    expect(api.gets).toBe(2);
  });
});

describe("parseNdjson", () => {
  it("splits lines across chunk boundaries, skipping blank ones", async () => {
    const text = '{"type":"requested"}\n\n{"type":"step","instruction":"RUN é"}\n{"type":"started"}';
    const bytes = new TextEncoder().encode(text);
    async function* chunks() {
      // Cut inside a line and inside the two-byte "é".
      for (const [a, b] of [
        [0, 5],
        [5, 57],
        [57, bytes.length],
      ] as const)
        yield bytes.slice(a, b);
    }
    const events: unknown[] = [];
    for await (const e of parseNdjson(chunks())) events.push(e);
    expect(events).toEqual([
      { type: "requested" },
      { type: "step", instruction: "RUN é" },
      { type: "started" },
    ]);
  });
});
