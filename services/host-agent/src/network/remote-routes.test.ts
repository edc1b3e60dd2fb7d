import { describe, expect, it } from "vitest";
import {
  hostRouteFacts,
  machineRouteFacts,
  type RemoteRoute,
  RouteSync,
  remoteRoutes,
} from "./remote-routes.js";

const hosts = [
  { hostId: "h1", status: "active", underlayIp: "fd00:99::1" },
  { hostId: "h2", status: "cordoned", underlayIp: "fd00:99::2" },
  { hostId: "h3", status: "active", underlayIp: "" },
  { hostId: "h4", status: "removed", underlayIp: "fd00:99::4" },
];
const machine = (hostId: string, privateIpv6: string, status = "started") => ({
  hostId,
  privateIpv6,
  status,
});

describe("remote 6PN routes", () => {
  it("routes other hosts' machines via their underlay address, sorted by address", () => {
    const routes = remoteRoutes(
      "h1",
      [machine("h2", "fdaa:1:2::9"), machine("h2", "fdaa:1:2::5", "stopped"), machine("h1", "fdaa:1:2::7")],
      hosts,
    );
    expect(routes).toEqual([
      { address: "fdaa:1:2::5", via: "fd00:99::2" },
      { address: "fdaa:1:2::9", via: "fd00:99::2" },
    ]);
  });

  it("leaves out destroyed machines, machines without 6PN, and hosts removed, unknown or without an underlay", () => {
    const routes = remoteRoutes(
      "h1",
      [
        machine("h2", "fdaa:1:2::1", "destroyed"),
        machine("h2", ""),
        machine("h3", "fdaa:1:2::3"),
        machine("h4", "fdaa:1:2::4"),
        machine("h9", "fdaa:1:2::5"),
      ],
      hosts,
    );
    expect(routes).toEqual([]);
  });

  it("routes only 6PN addresses: an event naming another address diverts nothing and stops no other route", () => {
    const routes = remoteRoutes(
      "h1",
      [
        machine("h2", "fd00:99::1"), // the underlay: a control-plane address
        machine("h2", "2001:db8::1"),
        machine("h2", "10.0.0.1"),
        machine("h2", "not an address"),
        machine("h2", "fdaa:1:2::9"),
      ],
      hosts,
    );
    expect(routes).toEqual([{ address: "fdaa:1:2::9", via: "fd00:99::2" }]);
  });
});

describe("what routes depend on", () => {
  it("changes with a machine's host, address or destruction, not with its other states", () => {
    const started = machineRouteFacts(machine("h2", "fdaa:1:2::9"));
    expect(machineRouteFacts(machine("h2", "fdaa:1:2::9", "stopped"))).toBe(started);
    expect(machineRouteFacts(machine("h2", "fdaa:1:2::9", "destroyed"))).not.toBe(started);
    expect(machineRouteFacts(machine("h3", "fdaa:1:2::9"))).not.toBe(started);
    expect(machineRouteFacts(machine("h2", "fdaa:1:2::8"))).not.toBe(started);
    expect(machineRouteFacts({ status: "absent" })).not.toBe(started);
  });

  it("changes with a host's underlay or removal, not with its cordon", () => {
    const active = hostRouteFacts({ hostId: "h2", status: "active", underlayIp: "fd00:99::2" });
    expect(hostRouteFacts({ hostId: "h2", status: "cordoned", underlayIp: "fd00:99::2" })).toBe(active);
    expect(hostRouteFacts({ hostId: "h2", status: "removed", underlayIp: "fd00:99::2" })).not.toBe(active);
    expect(hostRouteFacts({ hostId: "h2", status: "active", underlayIp: "fd00:99::3" })).not.toBe(active);
  });
});

describe("RouteSync", () => {
  function deferred() {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    return { promise, resolve };
  }

  it("runs one apply at a time and one more pass for the changes made during it", async () => {
    let current: RemoteRoute[] = [{ address: "fdaa::10", via: "fd00:99::2" }];
    const applied: RemoteRoute[][] = [];
    const gates = [deferred(), deferred()];
    const sync = new RouteSync({
      compute: () => current,
      apply: async (routes) => {
        applied.push(routes);
        await gates[applied.length - 1]?.promise;
      },
      logger: { warn() {} },
    });
    sync.changed();
    current = [{ address: "fdaa::11", via: "fd00:99::2" }];
    sync.changed();
    sync.changed();
    expect(applied).toHaveLength(1);
    gates[0]?.resolve();
    gates[1]?.resolve();
    await sync.idle();
    expect(applied).toEqual([[{ address: "fdaa::10", via: "fd00:99::2" }], current]);
    // An unchanged set applies nothing.
    sync.changed();
    await sync.idle();
    expect(applied).toHaveLength(2);
  });

  it("loses no change that comes right after a pass that applied nothing (two events in one read)", async () => {
    // A pass whose set equals the last one applied ends without awaiting anything. A second change
    // made in the same synchronous run (the next message of the same socket read) must still be
    // applied, not be taken for one the finished pass will see.
    let current: RemoteRoute[] = [{ address: "fdaa::10", via: "fd00:99::2" }];
    const applied: RemoteRoute[][] = [];
    const sync = new RouteSync({
      compute: () => current,
      apply: async (routes) => {
        applied.push(routes);
      },
      logger: { warn() {} },
    });
    sync.changed();
    await sync.idle();
    sync.changed(); // the machine's create: no route moves
    current = [...current, { address: "fdaa::11", via: "fd00:99::2" }];
    sync.changed(); // its start, in the same read: a new route
    await sync.idle();
    expect(applied).toEqual([[{ address: "fdaa::10", via: "fd00:99::2" }], current]);
  });

  it("tries a failed apply again, and starts nothing once stopped", async () => {
    let calls = 0;
    const warned: unknown[] = [];
    const done = deferred();
    const sync = new RouteSync({
      compute: () => [{ address: "fdaa::10", via: "fd00:99::2" }],
      apply: async () => {
        calls++;
        if (calls === 1) throw new Error("ip: RTNETLINK answers: Network is unreachable");
        done.resolve();
      },
      logger: { warn: (o: unknown) => warned.push(o) },
      retryMs: 10,
    });
    sync.changed();
    await done.promise;
    expect(calls).toBe(2);
    expect(warned).toHaveLength(1);
    await sync.stop();
    sync.changed();
    await sync.idle();
    expect(calls).toBe(2);
  });
});
