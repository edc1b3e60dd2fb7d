import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runTool } from "@hangar/oci";
import { buildFirewallRuleset, buildSubnets, isLoopback, resolvConfNameservers } from "./build-firewall.js";
import { EgressForwarding, processAlive } from "./egress-forwarding.js";

const IP = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].find((p) => existsSync(p)) ?? "ip";
const NFT = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].find((p) => existsSync(p)) ?? "nft";

/** The block builds' /30s come from by default, beside machines' 172.30.0.0/16 (HANGAR_HOST_AGENT_MACHINE_CIDR). */
export const DEFAULT_BUILD_NETWORK_CIDR = "172.29.0.0/16";

/** The packages of the tools build networks need that this host lacks (a tool found nowhere is named bare). */
export function missingNetworkTools(): string[] {
  return [
    ...(IP.startsWith("/") ? [] : ["iproute2 (ip)"]),
    ...(NFT.startsWith("/") ? [] : ["nftables (nft)"]),
  ];
}

/** Where builders of this host claim build /30s and keep their forwarding holds. */
export const BUILD_NETWORK_STATE_DIR = "/run/hangar/build-networks";

/** Where a build's nameservers come from: the host's resolv.conf, or systemd-resolved's upstream list when that one is a loopback stub. */
const RESOLV_CONFS = ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"];

/** One build's network namespace, for its RUN steps with network. */
export interface BuildNetwork {
  /** The namespace crun joins. */
  netnsPath: string;
  /** The resolv.conf bound into RUN steps: the nameservers the build may reach. */
  resolvConf: string;
  /** The CA bundle RUN steps with network trust besides the image's own (HANGAR_BUILDER_CA_FILE). */
  caFile?: string;
  /** Removes the namespace, veth pair, table and forwarding hold. */
  close(): Promise<void>;
}

/** A claim file's content: which process holds the /30, and the suffix of the objects it made. */
interface Claim {
  pid: number;
  suffix: string;
}

/**
 * The builder's networks for RUN steps: each build gets a namespace of its own, joined to the
 * builder's by a veth pair with a /30 of `cidr`, NATed out through the host's default route, with
 * an nftables table of its own (build-firewall.ts) so that nothing of the host or its private
 * networks is reachable from it. Everything made is removed at close; what a builder that died
 * left is removed when its /30 is claimed again.
 */
export class BuildNetworks {
  private readonly forwarding: EgressForwarding;

  private readonly stateDir: string;
  private readonly caFile: string | undefined;

  /**
   * `caFile`: a PEM bundle RUN steps with network trust as well (a host whose egress goes through a
   * TLS-inspecting proxy); `stateDir`: where claims and holds are kept.
   */
  constructor(
    private readonly cidr: string,
    opts: { stateDir?: string; caFile?: string } = {},
  ) {
    this.stateDir = opts.stateDir ?? BUILD_NETWORK_STATE_DIR;
    this.caFile = opts.caFile;
    this.forwarding = new EgressForwarding(join(this.stateDir, "forwarding"));
  }

  /** Makes a build network; fails with what to do when the host gives builds no nameserver or route out. */
  async open(): Promise<BuildNetwork> {
    const nameservers = await hostNameservers();
    const egress = await egressDevices();
    const suffix = randomBytes(6).toString("hex");
    const subnet = await this.claim(suffix);
    const names = objectNames(suffix);
    const resolvConf = join(this.stateDir, "resolv", `${suffix}.conf`);
    const close = () => this.teardown(suffix, subnet.build, egress);
    try {
      await ip("netns", "add", names.netns);
      await ip("link", "add", names.veth, "type", "veth", "peer", "name", "eth0", "netns", names.netns);
      await ip("addr", "add", `${subnet.host}/30`, "dev", names.veth);
      await ip("link", "set", names.veth, "up");
      await writeFile(`/proc/sys/net/ipv4/conf/${names.veth}/forwarding`, "1");
      await ip("-n", names.netns, "link", "set", "lo", "up");
      await ip("-n", names.netns, "addr", "add", `${subnet.build}/30`, "dev", "eth0");
      await ip("-n", names.netns, "link", "set", "eth0", "up");
      await ip("-n", names.netns, "route", "add", "default", "via", subnet.host);
      const ruleset = buildFirewallRuleset({
        table: names.table,
        veth: names.veth,
        address: subnet.build,
        cidr: this.cidr,
        nameservers,
      });
      await mkdir(join(this.stateDir, "resolv"), { recursive: true });
      const rules = join(this.stateDir, "resolv", `${suffix}.nft`);
      await writeFile(rules, ruleset);
      await runTool(NFT, ["-f", rules]).finally(() => rm(rules, { force: true }));
      for (const dev of egress) await this.forwarding.hold(dev, suffix);
      await writeFile(resolvConf, nameservers.map((n) => `nameserver ${n}\n`).join(""));
    } catch (err) {
      await close().catch(() => undefined);
      throw new Error(`could not make the build's network namespace: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return {
      netnsPath: `/run/netns/${names.netns}`,
      resolvConf,
      ...(this.caFile ? { caFile: this.caFile } : {}),
      close,
    };
  }

  /** Claims the first free /30 (a file made with O_EXCL), taking over one whose builder died after tearing down what it left. */
  private async claim(suffix: string): Promise<{ host: string; build: string }> {
    const dir = join(this.stateDir, "addresses");
    await mkdir(dir, { recursive: true });
    const content = JSON.stringify({ pid: process.pid, suffix } satisfies Claim);
    for (const subnet of buildSubnets(this.cidr)) {
      const file = join(dir, subnet.build);
      try {
        await writeFile(file, content, { flag: "wx" });
        return subnet;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const left = await readClaim(file);
      if (left === undefined || processAlive(left.pid)) continue;
      await this.teardown(left.suffix, subnet.build, await egressDevices().catch(() => []));
      try {
        await writeFile(file, content, { flag: "wx" });
        return subnet;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    }
    throw new Error(
      `every /30 of the build network block ${this.cidr} is in use: set a larger HANGAR_BUILDER_NETWORK_CIDR`,
    );
  }

  private async teardown(suffix: string, address: string, egress: string[]): Promise<void> {
    const names = objectNames(suffix);
    await runTool(NFT, ["delete", "table", "inet", names.table], { allowFailure: true });
    if (existsSync(`/run/netns/${names.netns}`)) await ip("netns", "delete", names.netns);
    // Deleting the namespace deletes the pair, in the background: a host end still listed may be gone by now.
    await runTool(IP, ["link", "delete", names.veth], { allowFailure: true });
    for (const dev of egress) await this.forwarding.release(dev, suffix);
    await rm(join(this.stateDir, "resolv", `${suffix}.conf`), { force: true });
    await rm(join(this.stateDir, "addresses", address), { force: true });
  }
}

function objectNames(suffix: string): { netns: string; veth: string; table: string } {
  return { netns: `hangar-build-${suffix}`, veth: `hb${suffix}`, table: `hangar_build_${suffix}` };
}

async function readClaim(file: string): Promise<Claim | undefined> {
  try {
    const claim = JSON.parse(await readFile(file, "utf8")) as Claim;
    return /^[0-9a-f]{12}$/.test(claim.suffix) ? claim : undefined;
  } catch {
    return undefined;
  }
}

async function ip(...args: string[]): Promise<void> {
  await runTool(IP, args);
}

/** The interfaces of the host's default routes: where builds' traffic leaves. */
async function egressDevices(): Promise<string[]> {
  const { stdout } = await runTool(IP, ["-j", "-4", "route", "show", "default"]);
  const devs = [
    ...new Set((JSON.parse(stdout) as Array<{ dev?: string }>).flatMap((r) => (r.dev ? [r.dev] : []))),
  ];
  if (devs.length === 0)
    throw new Error("the host has no IPv4 default route for builds' traffic to leave by");
  return devs;
}

/** The host's nameservers a build can reach (not the host's loopback). */
async function hostNameservers(): Promise<string[]> {
  for (const file of RESOLV_CONFS) {
    const text = await readFile(file, "utf8").catch(() => "");
    const reachable = resolvConfNameservers(text).filter((n) => !isLoopback(n));
    if (reachable.length > 0) return reachable;
  }
  throw new Error(
    `no nameserver a build can reach: ${RESOLV_CONFS.join(" and ")} name none but the host's loopback; give the host an upstream nameserver`,
  );
}
