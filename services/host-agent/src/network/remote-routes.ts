import { BlockList, isIPv6 } from "node:net";
import type { Logger } from "@hangar/telemetry";

/** A 6PN route to another host's machine: its address (/128) via that host's underlay IPv6. */
export interface RemoteRoute {
  address: string;
  via: string;
}

/** What the route computation reads of a machine (MACHINES). */
export interface RoutedMachine {
  hostId: string;
  status: string;
  privateIpv6: string;
}

/** What the route computation reads of a host (HOSTS). */
export interface RoutedHost {
  hostId: string;
  status: string;
  underlayIp: string;
}

/**
 * The routes host `self` needs to reach every other host's machines on 6PN: each machine that has a
 * 6PN address, is not destroyed, and lives on a registered (not removed) host with an underlay
 * address. Sorted by address, so equal sets compare equal.
 */
export function remoteRoutes(
  self: string,
  machines: Iterable<RoutedMachine>,
  hosts: Iterable<RoutedHost>,
): RemoteRoute[] {
  const underlay = new Map<string, string>();
  for (const h of hosts)
    if (h.hostId !== self && h.status !== "absent" && h.status !== "removed" && h.underlayIp !== "")
      underlay.set(h.hostId, h.underlayIp);
  const routes = new Map<string, string>();
  for (const m of machines) {
    const via = underlay.get(m.hostId);
    // Only 6PN addresses become routes: an event naming any other address (a control-plane one, or
    // not an address at all) must neither divert this host's traffic nor stop every other route.
    if (via !== undefined && isIPv6(via) && isSixpn(m.privateIpv6) && m.status !== "destroyed")
      routes.set(m.privateIpv6, via);
  }
  return [...routes]
    .map(([address, via]) => ({ address, via }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

const SIXPN = new BlockList();
SIXPN.addSubnet("fdaa::", 16, "ipv6");

/** Whether `address` is an IPv6 address inside fdaa::/16, where every org's /48 is (sixpn.ts). */
function isSixpn(address: string): boolean {
  return isIPv6(address) && SIXPN.check(address, "ipv6");
}

/**
 * What of a machine's state the routes depend on, as a string: a change that leaves it equal (a check,
 * a stop request) moves no route, so it need not recompute them.
 */
export function machineRouteFacts(m: RoutedMachine | { status: "absent" }): string {
  return "hostId" in m ? `${m.hostId} ${m.privateIpv6} ${m.status === "destroyed"}` : "";
}

/** What of a host's state the routes depend on (a reservation moves none). */
export function hostRouteFacts(h: RoutedHost | { status: "absent" }): string {
  return "hostId" in h ? `${h.status === "removed"} ${h.underlayIp}` : "";
}

export interface RouteSyncOptions {
  /** The routes as the views say now. */
  compute(): RemoteRoute[];
  /** Installs exactly these routes (HostNetwork.setRemoteRoutes). */
  apply(routes: RemoteRoute[]): Promise<void>;
  logger: Pick<Logger, "warn">;
  /** How long after a failed apply it is tried again; default 1 s. */
  retryMs?: number;
}

/**
 * Keeps the host's 6PN routes in step with the views: every change asks for a sync, at most one apply
 * runs at a time, changes during it cause one more pass, and a set equal to the last one applied
 * costs nothing (most machine events move no route).
 */
export class RouteSync {
  /** Set and cleared synchronously with the loop's last look at `again`: see `changed`. */
  private busy = false;
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private applied: string | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: RouteSyncOptions) {}

  /** Asks for a sync; returns at once. */
  changed(): void {
    if (this.stopped) return;
    this.again = true;
    // `busy` is cleared by the loop itself, in the same synchronous step as its last look at `again`.
    // A marker cleared in a `.finally` would be cleared a few microtasks later: a pass that applies
    // nothing ends without awaiting, and a change made meanwhile (the next message of the same socket
    // read) would be left to a loop that has already ended.
    if (this.busy) return;
    this.busy = true;
    this.running = this.loop();
  }

  /** Resolves once no sync is running. */
  async idle(): Promise<void> {
    while (this.busy) await this.running;
  }

  /** No sync starts from now on; the routes stay as they are (a restarted agent keeps them). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.idle();
  }

  private async loop(): Promise<void> {
    try {
      while (this.again && !this.stopped) {
        this.again = false;
        const routes = this.o.compute();
        const key = JSON.stringify(routes);
        if (key === this.applied) continue;
        try {
          await this.o.apply(routes);
          this.applied = key;
        } catch (err) {
          this.o.logger.warn({ err, routes: routes.length }, "6PN routes not applied; trying again");
          this.applied = undefined;
          clearTimeout(this.retry);
          this.retry = setTimeout(() => this.changed(), this.o.retryMs ?? 1_000);
          this.retry.unref();
        }
      }
    } finally {
      // No await between the loop's last look at `again` and this line.
      this.busy = false;
    }
  }
}
