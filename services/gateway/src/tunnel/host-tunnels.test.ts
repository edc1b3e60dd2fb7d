import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { pipeBothWays } from "@hangar/config";
import type { ExistingMachine } from "@hangar/domain";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog, MachineRecord } from "../machines/catalog.js";
import { HostTunnels } from "./host-tunnels.js";

// Port tunnels connect straight to the machine's private address, as the catalog has it (here a TCP
// echo server on 127.0.0.1); no host agent is asked, so the NATS connection is never used.

let echo: Server;
let echoPort: number;

/** A machine of app "web" in the state given, its private address 127.0.0.1. */
const record = (machineId: string, status: ExistingMachine["status"]) =>
  ({ state: { machineId, app: "web", status, hostId: "h1", privateIp: "127.0.0.1" } }) as MachineRecord;

const machines = [record("m1", "started"), record("m2", "stopped")];
const catalog: Pick<Catalog, "machine" | "machinesOf" | "app"> = {
  machine: (id) => machines.find((m) => `web.${m.state.machineId}` === id),
  machinesOf: (app) => (app === "web" ? machines : []),
  app: (name) => (name === "web" ? ({} as ReturnType<Catalog["app"]>) : undefined),
};
const tunnels = new HostTunnels({} as NatsConnection, catalog);

/**
 * "round trip" sent through a tunnel's connection and read back, as the gateway relays it: a client
 * socket whose accepted end is piped both ways to the tunnel (its reads reach nothing else).
 */
async function roundTrip(tunnel: Socket): Promise<string> {
  const relay = createServer((accepted) => pipeBothWays(accepted, tunnel)).listen(0, "127.0.0.1");
  await once(relay, "listening");
  const client = connect({ host: "127.0.0.1", port: (relay.address() as AddressInfo).port });
  try {
    const back = once(client, "data");
    client.write("round trip");
    return String((await back)[0]);
  } finally {
    client.destroy();
    await new Promise<void>((done) => relay.close(() => done()));
  }
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => "opened",
    (err: { code?: string; message: string }) => `${err.code}: ${err.message}`,
  );

beforeAll(async () => {
  echo = createServer((s) => s.pipe(s)).listen(0, "127.0.0.1");
  await once(echo, "listening");
  echoPort = (echo.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((done) => echo.close(() => done())));

describe("port tunnels", () => {
  it("connect to the port at the machine's private address, the one given or any started one", async () => {
    for (const machineId of ["m1", undefined]) {
      const socket = await tunnels.open("web", machineId, { kind: "port", port: echoPort });
      expect(await roundTrip(socket)).toBe("round trip");
    }
  });

  it("refuse a machine not started, an unknown one or app, and a port nothing listens on", async () => {
    const closed = createServer().listen(0, "127.0.0.1");
    await once(closed, "listening");
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((done) => closed.close(() => done()));
    const port = { kind: "port", port: echoPort } as const;
    expect(await refusal(tunnels.open("web", "m2", port))).toMatch(/^failed_precondition: .*is stopped/);
    expect(await refusal(tunnels.open("web", "m9", port))).toMatch(/^not_found: /);
    expect(await refusal(tunnels.open("gone", undefined, port))).toMatch(/^not_found: app gone/);
    expect(await refusal(tunnels.open("web", "m1", { kind: "port", port: closedPort }))).toMatch(
      /^unavailable: cannot reach port \d+ of machine m1: .*ECONNREFUSED/,
    );
  });
});
