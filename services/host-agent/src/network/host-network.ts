import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { isIPv6 } from "node:net";
import type { Logger } from "@hangar/telemetry";
import { ensureNetns, IP, machineEnd, removeNetns, vethName } from "../driver/netns.js";
import { type FirewallLink, firewallRuleset, firewallTable } from "./firewall.js";
import { formatIpv6, parseIpv6 } from "./sixpn.js";

/** Fly's resolver address: every machine's nameserver, served by the host it runs on. */
export const RESOLVER_ADDRESS = "fdaa::3";

/**
 * The route protocol number of the 6PN routes to other hosts' machines (`ip route ... proto 77`):
 * it tells them from every other route, so a restarted agent replaces exactly the set it installed.
 */
export const REMOTE_ROUTE_PROTO = "77";

const NFT = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].find((path) => existsSync(path)) ?? "nft";
const SYSCTL =
  ["/usr/sbin/sysctl", "/sbin/sysctl", "/usr/bin/sysctl"].find((path) => existsSync(path)) ?? "sysctl";
/** Every org prefix is a /48 (sixpn.ts): a machine's prefix is read back from its address after a restart. */
const ORG_PREFIX_BITS = 48n;

export interface HostNetworkOptions {
  /** The namespace that is this host's network (/run/netns/<name>); undefined: the agent's own (a real host). */
  netns?: string;
  hostId: string;
  /** The IPv4 block this host's machines get their /30s from. */
  machineCidr: string;
  /** Destinations machines may not reach, besides BUILT_IN_EGRESS_DENY and the machine CIDR. */
  egressDeny: string[];
  /** IPv4 sources of the control plane elsewhere whose forwarded packets reach machines (HANGAR_HOST_AGENT_CONTROL_SOURCES). */
  controlSources?: string[];
  logger: Pick<Logger, "info" | "warn">;
}

/** One machine's link to its host: its IPv4 /30 address and, on its org's network, its 6PN address. */
export interface MachineLink {
  machineId: string;
  ipv4: string;
  sixpn?: { org: string; prefix: string; address: string };
}

/** Runs a command; rejects with its stderr when it fails. */
function run(argv: string[], input?: string): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const [file = "", ...args] = argv;
    const child = execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${argv.join(" ")}: ${stderr.trim() || err.message}`, { cause: err }));
      } else {
        resolve({ stdout });
      }
    });
    // A command that fails before reading its input reports through the callback, not as EPIPE.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input ?? "");
  });
}

/** The org /48 that holds a 6PN address, as `prefix/48`. */
function orgPrefixOf(address: string): string {
  const value = parseIpv6(address);
  if (value === undefined) throw new Error(`not an IPv6 address: ${address}`);
  const hostBits = 128n - ORG_PREFIX_BITS;
  return `${formatIpv6((value >> hostBits) << hostBits)}/${ORG_PREFIX_BITS}`;
}

/**
 * This host's network, as machines see it: their veths, 6PN routes (local and to other hosts), the
 * firewall (one nftables table per host agent) and forwarding, all in the host's namespace. The kernel
 * is the only record: a restarted agent reads the machines' links back from the namespace (the host
 * ends' /30s and the /128 routes to them) and its remote routes by their protocol number, so what it
 * finds keeps working while it starts. Machines' own links are set up side by side, but their host
 * ends' changes take turns with the remote routes' (one set at a time); the firewall is rewritten
 * whole, one apply at a time, each apply covering every change made before it began.
 */
export class HostNetwork {
  readonly netns: string | undefined;
  readonly machineCidr: string;
  readonly #table: string;
  readonly #egressDeny: string[];
  readonly #controlSources: string[];
  readonly #logger: Pick<Logger, "info" | "warn">;
  /** The firewall's view of every machine of this host, by the host end of its veth. */
  readonly #links = new Map<string, FirewallLink>();
  /** Other hosts' machines' 6PN addresses (the remote routes): the only off-host 6PN sources let into machines. */
  #remotes = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();
  /** The firewall apply under way, and the one that callers since it began wait for (firewallSoon). */
  readonly #firewall: { running: Promise<void> | null; queued: Promise<void> | null } = {
    running: null,
    queued: null,
  };

  private constructor(o: HostNetworkOptions) {
    this.netns = o.netns;
    this.machineCidr = o.machineCidr;
    this.#table = firewallTable(o.hostId);
    this.#egressDeny = o.egressDeny;
    this.#controlSources = o.controlSources ?? [];
    this.#logger = o.logger;
  }

  /** Turns forwarding on in the host's namespace and puts this agent's table in place, with the machines the namespace already has. */
  static async open(o: HostNetworkOptions): Promise<HostNetwork> {
    if (o.netns !== undefined && !existsSync(`/run/netns/${o.netns}`)) {
      throw new Error(
        `the host's network namespace ${o.netns} does not exist (/run/netns/${o.netns}): create it (ip netns add ${o.netns}) or unset HANGAR_HOST_AGENT_NETNS`,
      );
    }
    const network = new HostNetwork(o);
    if (o.netns === undefined) {
      o.logger.info(
        { table: `inet ${network.#table}` },
        "no host network namespace set: this is a real host, so IP forwarding goes on and the machines' firewall table is installed in the agent's own namespace",
      );
    }
    await network.exec([SYSCTL, "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    // The resolver (dns/) binds this address; machines reach it through their IPv6 default route.
    await network.#ip(["link", "set", "lo", "up"]);
    await network.#ip(["addr", "replace", `${RESOLVER_ADDRESS}/128`, "dev", "lo", "nodad"]);
    for (const link of await network.#linksInKernel()) network.#links.set(link.veth, link);
    // The routes a previous agent left stand for the remote machines until the views say otherwise.
    network.#remotes = new Set((await network.#remoteRoutes()).keys());
    await network.#applyFirewall();
    return network;
  }

  /**
   * Makes sure the machine's namespace, veth pair, addresses and routes are there (changing only what
   * is missing or wrong), and that the firewall knows it, before its process starts.
   */
  async ensureMachine(link: MachineLink): Promise<void> {
    const veth = vethName(link.machineId);
    const entry: FirewallLink = { veth, ipv4: link.ipv4 };
    if (link.sixpn) {
      const prefix = orgPrefixOf(link.sixpn.address);
      if (
        prefix !== orgPrefixOf(link.sixpn.prefix.split("/")[0] ?? "") ||
        !link.sixpn.prefix.endsWith("/48")
      ) {
        throw new Error(
          `6PN address ${link.sixpn.address} is not in org prefix ${link.sixpn.prefix} (a /48)`,
        );
      }
      entry.sixpn = { prefix, address: link.sixpn.address };
    }
    const before = this.#links.get(veth);
    try {
      // Machines' own devices are theirs alone: their starts set them up side by side. Only the host
      // end's changes, its /128 route among them, take turns with the remote routes, and the link is
      // known from then on: setRemoteRoutes never puts another host's route over a local machine's.
      await ensureNetns(
        { machineId: link.machineId, ipv4: link.ipv4, ...(link.sixpn ? { ipv6: link.sixpn.address } : {}) },
        this.netns,
        (hostSide) =>
          this.#serialized(async () => {
            this.#links.set(veth, entry);
            await hostSide();
          }),
      );
    } catch (err) {
      if (before) this.#links.set(veth, before);
      else this.#links.delete(veth);
      throw err;
    }
    // The table is rewritten once for the starts that came together.
    await this.#firewallSoon();
  }

  /** Removes the machine from the firewall, then its namespace and veth pair (with its routes). */
  async removeMachine(machineId: string): Promise<void> {
    if (this.#links.delete(vethName(machineId))) await this.#firewallSoon();
    await removeNetns(machineId, this.netns);
  }

  /**
   * Replaces the whole set of 6PN routes to other hosts' machines (`<address>/128 via <underlay>`):
   * adds or changes what differs, removes what is no longer wanted, leaves the rest (and every other
   * route) alone.
   */
  setRemoteRoutes(routes: Array<{ address: string; via: string }>): Promise<void> {
    return this.#serialized(async () => {
      const local = new Set([...this.#links.values()].flatMap((l) => (l.sixpn ? [l.sixpn.address] : [])));
      const wanted = new Map<string, string>();
      for (const { address, via } of routes) {
        if (!isIPv6(address) || !isIPv6(via)) throw new Error(`not an IPv6 route: ${address} via ${via}`);
        if (local.has(address)) {
          this.#logger.warn(
            { address, via },
            "a 6PN route to another host for a machine of this host: skipped",
          );
          continue;
        }
        wanted.set(formatIpv6(parseIpv6(address) as bigint), formatIpv6(parseIpv6(via) as bigint));
      }
      const installed = await this.#remoteRoutes();
      for (const [address, via] of installed) {
        if (!wanted.has(address)) {
          await this.#ip(["-6", "route", "del", `${address}/128`, "via", via, "proto", REMOTE_ROUTE_PROTO]);
        }
      }
      for (const [address, via] of wanted) {
        if (installed.get(address) === via) continue;
        await this.#ip(["-6", "route", "replace", `${address}/128`, "via", via, "proto", REMOTE_ROUTE_PROTO]);
      }
      const remotes = new Set(wanted.keys());
      if (remotes.size !== this.#remotes.size || [...remotes].some((a) => !this.#remotes.has(a))) {
        this.#remotes = remotes;
        await this.#firewallSoon();
      }
    });
  }

  /** Runs a command in the host's namespace (or directly when there is none); rejects when it fails. */
  exec(argv: string[]): Promise<{ stdout: string }> {
    return run(this.netns === undefined ? argv : [IP, "netns", "exec", this.netns, ...argv]);
  }

  #ip(args: string[]): Promise<{ stdout: string }> {
    return run([IP, ...(this.netns === undefined ? [] : ["-n", this.netns]), ...args]);
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Resolves once an apply of the firewall that began after this call has ended. Changes made before
   * the call are in it (the ruleset is built as an apply begins), and the changes of every caller
   * waiting meanwhile go in one apply: starts that come together rewrite the table once, not once
   * each in a row.
   */
  #firewallSoon(): Promise<void> {
    if (this.#firewall.queued) return this.#firewall.queued;
    const running = this.#firewall.running ?? Promise.resolve();
    const queued = running
      .catch(() => undefined)
      .then(() => {
        this.#firewall.queued = null;
        const apply = this.#applyFirewall();
        this.#firewall.running = apply;
        return apply.finally(() => {
          if (this.#firewall.running === apply) this.#firewall.running = null;
        });
      });
    this.#firewall.queued = queued;
    return queued;
  }

  /** Replaces the table with one made from every machine link, in one nft transaction. */
  async #applyFirewall(): Promise<void> {
    const ruleset = firewallRuleset({
      table: this.#table,
      links: [...this.#links.values()],
      machineCidr: this.machineCidr,
      egressDeny: this.#egressDeny,
      controlSources: this.#controlSources,
      remotes: [...this.#remotes],
      resolver: RESOLVER_ADDRESS,
    });
    const nft = [NFT, "-f", "-"];
    await run(this.netns === undefined ? nft : [IP, "netns", "exec", this.netns, ...nft], ruleset);
  }

  /** The machine links the host's namespace holds: veths `hv…` with a /30 (machine = host end + 1), and their /128 routes. */
  async #linksInKernel(): Promise<FirewallLink[]> {
    const links = JSON.parse((await this.#ip(["-j", "-4", "addr", "show"])).stdout) as Array<{
      ifname: string;
      addr_info?: Array<{ local: string; prefixlen: number }>;
    }>;
    const found = new Map<string, FirewallLink>();
    for (const link of links) {
      const v4 = link.addr_info?.find((a) => a.prefixlen === 30);
      if (!/^hv[0-9a-f]{12}$/.test(link.ifname) || !v4) continue;
      found.set(link.ifname, { veth: link.ifname, ipv4: machineEnd(v4.local) });
    }
    const routes = JSON.parse((await this.#ip(["-j", "-6", "route", "show"])).stdout) as Array<{
      dst: string;
      dev?: string;
      gateway?: string;
    }>;
    for (const route of routes) {
      const link = route.dev ? found.get(route.dev) : undefined;
      if (!link || route.gateway || !isIPv6(route.dst)) continue;
      link.sixpn = { prefix: orgPrefixOf(route.dst), address: route.dst };
    }
    return [...found.values()];
  }

  /** The remote routes this agent installed: address -> underlay IPv6. */
  async #remoteRoutes(): Promise<Map<string, string>> {
    const routes = JSON.parse(
      (await this.#ip(["-j", "-6", "route", "show", "proto", REMOTE_ROUTE_PROTO])).stdout,
    ) as Array<{ dst: string; gateway?: string }>;
    const installed = new Map<string, string>();
    for (const route of routes) {
      if (route.gateway && isIPv6(route.dst)) installed.set(route.dst, route.gateway);
    }
    return installed;
  }
}
