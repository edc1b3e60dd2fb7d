import {
  type HostLogsReply,
  type HostLogsRequest,
  type MachineLogLine,
  serveCommands,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AppLogs } from "../src/logs/app-logs.js";

// App and host names of this file's own: other test files share the run's nats-server.
const app = `logs${process.pid}`;
const host = `h${process.pid}`;
let nc: NatsConnection;
let hostNc: NatsConnection;

function line(seq: number, text: string, machine = "m1"): MachineLogLine {
  return {
    ts: `2026-12-04T10:00:${String(seq).padStart(2, "0")}.000Z`,
    seq,
    app,
    machine_id: machine,
    region: "ams",
    stream: "stdout",
    line: text,
  };
}

const publish = (l: MachineLogLine) =>
  hostNc.publish(`logs.${app}.${l.region}.${l.machine_id}`, JSON.stringify(l));

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  hostNc = await connect({ servers: inject("natsUrl") });
  // A stand-in host agent: it keeps lines 1 and 2 of m1; while it answers, m1 prints line 3, and
  // line 2 goes out live once more (as a line printed just before the subscription would).
  serveCommands<HostLogsRequest, HostLogsReply>(hostNc, `cmd.host.${host}.logs`, "host", async (req) => {
    publish(line(2, "two"));
    publish(line(3, "three"));
    await hostNc.flush();
    return {
      lines: req.machine_ids.includes("m1") ? [line(1, "one"), line(2, "two")].slice(-req.limit) : [],
    };
  });
  await hostNc.flush();
});

afterAll(async () => {
  await nc?.close();
  await hostNc?.close();
});

function reader(machines = [{ machineId: "m1", hostId: host, region: "ams" }]): AppLogs {
  return new AppLogs({
    nc,
    appExists: (a) => a === app,
    machinesOf: () => machines,
    logger: createLogger("test", { level: "silent" }),
    hostTimeoutMs: 1_000,
  });
}

describe("AppLogs", () => {
  it("sends the recent lines, then live ones, none lost between and none twice", async () => {
    const stop = new AbortController();
    const got: string[] = [];
    const read = reader().logs(app, {}, { limit: 10, follow: true, signal: stop.signal });
    for await (const l of read) {
      got.push(`${l.seq} ${l.line}`);
      if (l.seq === 3) publish(line(4, "four"));
      if (l.seq === 4) stop.abort();
    }
    expect(got).toEqual(["1 one", "2 two", "3 three", "4 four"]);
  });

  it("without follow, sends the recent lines and ends; a filter that matches no machine asks no host", async () => {
    const stop = new AbortController();
    const recent = [];
    for await (const l of reader().logs(app, {}, { limit: 1, follow: false, signal: stop.signal }))
      recent.push(l.line);
    expect(recent).toEqual(["two"]);
    const none = [];
    for await (const l of reader().logs(
      app,
      { region: "elsewhere" },
      { limit: 5, follow: false, signal: stop.signal },
    ))
      none.push(l);
    expect(none).toEqual([]);
  });

  it("a host that does not answer costs its lines, not the read", async () => {
    const stop = new AbortController();
    const machines = [
      { machineId: "m1", hostId: host, region: "ams" },
      { machineId: "m9", hostId: `gone${process.pid}`, region: "ams" },
    ];
    const got = [];
    for await (const l of reader(machines).logs(app, {}, { limit: 5, follow: false, signal: stop.signal }))
      got.push(l.line);
    expect(got).toEqual(["one", "two"]);
  });
});

describe("AppLogs follows only the app's own machines", () => {
  it("drops live lines of a machine not in the app, and lines sent on another machine's subject", async () => {
    const stop = new AbortController();
    const got: string[] = [];
    const read = reader().logs(app, { region: "ams" }, { limit: 10, follow: true, signal: stop.signal });
    for await (const l of read) {
      got.push(`${l.machine_id} ${l.seq} ${l.line}`);
      if (l.seq === 3) {
        // A machine that is not the app's, on a subject under the app's prefix (what a host agent,
        // which may publish logs.*.*.*, could send), then m1's line on m2's subject.
        hostNc.publish(`logs.${app}.ams.m2`, JSON.stringify(line(50, "not the app's", "m2")));
        hostNc.publish(`logs.${app}.ams.m2`, JSON.stringify(line(51, "m1 on m2's subject")));
        publish(line(60, "last"));
      }
      if (l.seq === 60) stop.abort();
    }
    expect(got).toEqual(["m1 1 one", "m1 2 two", "m1 3 three", "m1 60 last"]);
  });
});

describe("AppLogs shows an edge app's console lines", () => {
  it("passes lines of an edge-<proxy> instance on its own subject, with the app's machines' lines", async () => {
    const stop = new AbortController();
    const got: string[] = [];
    const read = reader().logs(app, {}, { limit: 10, follow: true, signal: stop.signal });
    for await (const l of read) {
      got.push(`${l.machine_id} ${l.seq} ${l.line}`);
      if (l.seq === 3) {
        publish(line(1, "console.log from the edge", "edge-p1"));
        // Another proxy's line sent on p1's subject is not p1's.
        hostNc.publish(`logs.${app}.ams.edge-p1`, JSON.stringify(line(2, "p2 on p1's subject", "edge-p2")));
        publish(line(70, "last"));
      }
      if (l.seq === 70) stop.abort();
    }
    expect(got).toEqual([
      "m1 1 one",
      "m1 2 two",
      "m1 3 three",
      "edge-p1 1 console.log from the edge",
      "m1 70 last",
    ]);
  });
});
