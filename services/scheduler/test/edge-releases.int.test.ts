import { setTimeout as sleep } from "node:timers/promises";
import {
  type ReleaseCommand,
  type ReleaseEvent,
  type ReleasesState,
  releaseDecider,
  releasesStream,
} from "@hangar/domain";
import { CommandHandler } from "@hangar/eventstore";
import { AggregateView } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startScheduler } from "../src/mod.js";
import { Platform, serviceConfig, waitFor } from "./harness.js";

const logger = createLogger("scheduler-test", { level: process.env.SCHED_LOG ?? "silent" });
let platform: Platform;
let releases: AggregateView<ReleasesState, ReleaseCommand, ReleaseEvent>;
let stopScheduler: () => Promise<void>;

beforeAll(async () => {
  platform = await Platform.start();
  releases = await AggregateView.start(platform.store, releasesStream, releaseDecider);
  const nc = await connect({ servers: platform.server.url });
  const s = await startScheduler({ nc, logger, passIntervalMs: 200, warmupMs: 0 });
  stopScheduler = async () => {
    await s.stop();
    await nc.close();
  };
});

afterAll(async () => {
  await stopScheduler?.();
  await releases?.stop();
  await platform?.stop();
});

const handler = () => new CommandHandler(platform.store, releasesStream, releaseDecider);
const bundle = (c: string) => `sha256:${c.repeat(64)}`;

async function edgeRelease(app: string, id: string, digest: string): Promise<number> {
  const res = await handler().handle(
    app,
    {
      type: "CreateRelease",
      releaseId: id,
      imageRef: "",
      edge: { bundleDigest: digest, cpuMs: 50, memoryMb: 128 },
      configJson: JSON.stringify({ app, edge: { cpu_ms: 50, memory_mb: 128 } }),
      strategy: "immediate",
      orchestrated: true,
    },
    { commandId: `create-${id}` },
  );
  const created = res.events[0];
  return created?.type === "ReleaseCreated" ? (created.data.version ?? 0) : 0;
}

const releaseOf = (app: string, version: number) =>
  releases.get(app)?.releases.find((r) => r.version === version);

describe("release orchestrator, edge releases", () => {
  it("starts and succeeds an edge release at once, with no machine, leaving the app's machines alone", async () => {
    await platform.createApp("edgy");
    await platform.startedMachine("edgy", "e1", serviceConfig({ soft: 20, min: 1 }));
    const v1 = await edgeRelease("edgy", "r-edge-1", bundle("a"));
    const first = await waitFor("v1 to succeed", () => {
      const r = releaseOf("edgy", v1);
      return r?.status === "succeeded" ? r : undefined;
    });
    expect(first).toMatchObject({ groups: [], machineIds: [], previousVersion: 0, previousGroups: [] });
    expect(first.edge).toEqual({ bundleDigest: bundle("a"), cpuMs: 50, memoryMb: 128 });

    const v2 = await edgeRelease("edgy", "r-edge-2", bundle("b"));
    const second = await waitFor("v2 to succeed", () => {
      const r = releaseOf("edgy", v2);
      return r?.status === "succeeded" ? r : undefined;
    });
    expect(second.previousVersion).toBe(v1);
    // A few passes later: nothing was placed, and the machine is still there, started.
    await sleep(600);
    expect(platform.placements.filter((p) => p.app === "edgy")).toEqual([]);
    expect(platform.machinesOf("edgy").map((m) => [m.machineId, m.status])).toEqual([["e1", "started"]]);
    expect(platform.errors).toEqual([]);
  });
});
