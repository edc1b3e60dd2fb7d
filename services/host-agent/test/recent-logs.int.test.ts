import { CommandError, type HostLogsReply, type HostLogsRequest, sendCommand } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { ProcessDriver } from "../src/driver/mod.js";
import { type LoggedMachine, serveRecentLogs } from "../src/machine-logs.js";
import { recordExits, removeStateDir, runSpec, sh, tempStateDir } from "./harness.js";

let stateDir: string;
let driver: ProcessDriver;
let nc: NatsConnection;
let served: Subscription;
// A host id of its own: other test files share the run's nats-server.
const hostId = `logs-${process.pid}`;
const machines = new Map<string, LoggedMachine>([
  ["m1", { app: "web", region: "ams", machineId: "m1" }],
  ["m2", { app: "other", region: "ams", machineId: "m2" }],
]);

beforeEach(async () => {
  stateDir = await tempStateDir();
  driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
  nc = await connect({ servers: inject("natsUrl") });
  served = serveRecentLogs({
    nc,
    hostId,
    driver,
    machine: (id) => machines.get(id),
    logger: createLogger("test", { level: "silent" }),
  });
  await nc.flush();
});

afterEach(async () => {
  served.unsubscribe();
  await nc.close();
  await driver.close();
  await removeStateDir(stateDir);
});

const ask = (req: HostLogsRequest) =>
  sendCommand<HostLogsRequest, HostLogsReply>(nc, `cmd.host.${hostId}.logs`, req);

describe("cmd.host.<id>.logs", () => {
  it("answers the recent lines of the asked machines of the app, from their kept logs, after they exited", async () => {
    const { next } = recordExits(driver);
    for (const id of ["m1", "m2"]) {
      await driver.start(runSpec(id, sh(`echo ${id} one; echo ${id} two; echo ${id} three`)));
    }
    // The exit is reported once the run's output is drained into the kept log.
    for (const id of ["m1", "m2"]) await next(id);
    const { lines } = await ask({ app: "web", machine_ids: ["m1", "m2", "nope"], limit: 2 });
    expect(lines.map((l) => `${l.app} ${l.machine_id} ${l.region} ${l.line}`)).toEqual([
      "web m1 ams m1 two",
      "web m1 ams m1 three",
    ]);
    expect(lines.map((l) => l.seq)).toEqual([2, 3]);
    // m2 is another app's: asked for as "web", it adds nothing.
    expect((await ask({ app: "web", machine_ids: ["m2"], limit: 10 })).lines).toEqual([]);
    expect((await ask({ app: "other", machine_ids: ["m2"], limit: 10 })).lines).toHaveLength(3);
  });

  it("refuses a request without a bounded limit or a list of machines", async () => {
    for (const bad of [
      { app: "web", machine_ids: ["m1"], limit: 0 },
      { app: "web", machine_ids: ["m1"], limit: 100_000 },
      { app: "web", machine_ids: "m1", limit: 5 },
    ]) {
      const err = await ask(bad as HostLogsRequest).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CommandError);
      expect((err as CommandError).code).toBe("invalid_argument");
    }
  });
});
