import { createServer, type Server } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { SpanStatusCode, tracer } from "@hangar/telemetry";
import { startInMemoryTracing } from "@hangar/telemetry/testing";
import { afterEach, describe, expect, it } from "vitest";
import { CheckSupervisor } from "./check-supervisor.js";

const servers: Server[] = [];
const supervisors: CheckSupervisor[] = [];

afterEach(() => {
  for (const s of supervisors.splice(0)) s.stopAll();
  for (const s of servers.splice(0)) s.close();
});

/** A TCP server on 127.0.0.1 that counts the connections it gets. */
async function listener(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { port: address.port, connections: () => connections };
}

function machine(checks: Record<string, unknown>, internalPort = 8080) {
  return {
    machineId: "m1",
    configJson: JSON.stringify({ checks, services: [{ internal_port: internalPort }] }),
  };
}

function supervisor(): CheckSupervisor {
  const s = new CheckSupervisor();
  supervisors.push(s);
  return s;
}

describe("CheckSupervisor", () => {
  it("runs a machine's checks once, on the port it really got, until stopped", async () => {
    const { port, connections } = await listener();
    const s = supervisor();
    const changes: string[] = [];
    const m = machine({ alive: { type: "tcp", port: 8080, interval: "20ms", timeout: "1s" } });
    s.ensure(m, { privateIp: "127.0.0.1", port }, (name, status) => changes.push(`${name} ${status}`));
    // A second ensure (the machine found started again) does not start a second set.
    s.ensure(m, { privateIp: "127.0.0.1", port }, (name, status) => changes.push(`again ${name} ${status}`));
    while (changes.length === 0) await sleep(10);
    expect(changes).toEqual(["alive passing"]);
    expect(s.has("m1")).toBe(true);
    s.stop("m1");
    expect(s.has("m1")).toBe(false);
    const seen = connections();
    await sleep(80);
    expect(connections()).toBe(seen);
  });

  it("starts nothing for a machine without checks", () => {
    const s = supervisor();
    s.ensure(machine({}), { privateIp: "127.0.0.1", port: 1 }, () => {
      throw new Error("no check should report");
    });
    expect(s.has("m1")).toBe(false);
  });

  it("traces each check from the start until it first passes, and one stopped first as failed", async () => {
    const tracing = startInMemoryTracing();
    try {
      const { port } = await listener();
      const s = supervisor();
      const changes: string[] = [];
      const m = machine({
        alive: { type: "tcp", port: 8080, interval: "20ms", timeout: "1s" },
        // Nothing listens on port 1: this one never passes.
        dead: { type: "tcp", port: 1, interval: "20ms", timeout: "1s" },
      });
      const start = tracer().startActiveSpan("machine start", (span) => {
        s.ensure(m, { privateIp: "127.0.0.1", port }, (name, status) => changes.push(`${name} ${status}`));
        span.end();
        return span.spanContext();
      });
      while (!changes.includes("alive passing") || !changes.includes("dead critical")) await sleep(10);
      // Later results of a passed check add nothing.
      await sleep(60);
      const passed = tracing.spans().filter((x) => x.name === "check alive");
      expect(passed).toHaveLength(1);
      expect(passed[0]?.parentSpanContext?.spanId).toBe(start.spanId);
      expect(passed[0]?.events.map((e) => e.name)).toEqual(["passing"]);
      expect(tracing.spans().some((x) => x.name === "check dead")).toBe(false);

      s.stop("m1");
      const dead = tracing.spans().find((x) => x.name === "check dead");
      expect(dead?.status.code).toBe(SpanStatusCode.ERROR);
      expect(dead?.parentSpanContext?.spanId).toBe(start.spanId);
    } finally {
      await tracing.shutdown();
    }
  });
});
