// A trace per autoscaler decision: the decision's span is a root, and the actions it names (here one
// create, with its placement request) are spans under it.
import { createLogger } from "@hangar/telemetry";
import { type InMemoryTracing, startInMemoryTracing } from "@hangar/telemetry/testing";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningScheduler, startScheduler } from "../src/mod.js";
import { Platform, serviceConfig, waitFor } from "./harness.js";

let tracing: InMemoryTracing;
let platform: Platform;
let nc: NatsConnection;
let scheduler: RunningScheduler | undefined;

beforeAll(async () => {
  tracing = startInMemoryTracing();
  platform = await Platform.start();
  nc = await connect({ servers: platform.server.url });
});

afterAll(async () => {
  await scheduler?.stop();
  await nc?.close();
  await platform?.stop();
  await tracing?.shutdown();
});

it("makes each decision the root of a trace with its actions under it", async () => {
  await platform.createApp("traced");
  await platform.startedMachine("traced", "m1", serviceConfig({ soft: 20, min: 1 }));
  const logger = createLogger("scheduler-tracing-test", { level: "silent" });
  scheduler = await startScheduler({ nc, logger, passIntervalMs: 200, warmupMs: 0 });
  platform.load.set("traced", { concurrency: 40, machines: { m1: 40 } });
  const started = () => platform.machinesOf("traced").filter((m) => m.status === "started").length;
  await waitFor("2 started machines", () => (started() === 2 ? true : undefined));
  const [d] = platform.scalingOf("traced").decisions;
  const [action] = d?.actions ?? [];
  await waitFor("the create's span", () => tracing.spans().find((s) => s.name === "scale create"));

  const decision = tracing.spans().find((s) => s.name === "scaling decision");
  expect(decision?.parentSpanContext).toBeUndefined();
  expect(decision?.attributes).toMatchObject({
    "hangar.app": "traced",
    "hangar.scaling.decision_id": d?.decisionId,
    "hangar.scaling.current": 1,
    "hangar.scaling.desired": 2,
    "hangar.scaling.reason": d?.reason,
  });
  const create = tracing.spans().find((s) => s.name === "scale create");
  expect(create?.attributes["hangar.machine_id"]).toBe(action?.machineId);
  expect(create?.parentSpanContext?.spanId).toBe(decision?.spanContext().spanId);
  // What the create did (its placement request, its MACHINES append) is in the decision's trace.
  const traceId = decision?.spanContext().traceId;
  const inTrace = tracing.spans().filter((s) => s.spanContext().traceId === traceId);
  expect(inTrace.map((s) => s.name)).toEqual(
    expect.arrayContaining([
      "scaling decision",
      "scale create",
      "cmd.placement.place request",
      "MACHINES publish",
    ]),
  );
});
