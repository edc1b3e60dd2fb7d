import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { constants } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CommandFailedError, ServerStartError } from "./errors.js";
import { cleanupOnExit } from "./exit-cleanup.js";

const execFileAsync = promisify(execFile);

/** One simulated host: a network namespace on the fabric, routed to from the test's own namespace. */
export interface TopologyHost {
  /** "h1", "h2", ... */
  name: string;
  /** The namespace that is this host's network (HANGAR_HOST_AGENT_NETNS). */
  netns: string;
  /** IPv6 on the fabric bridge, fd00:99::<i> (HANGAR_HOST_AGENT_UNDERLAY_IP). */
  underlayIp: string;
  /** IPv4 block for its machines' /30s, routed from the test's namespace through the uplink (HANGAR_HOST_AGENT_MACHINE_CIDR). */
  machineCidr: string;
  /** The host namespace's end of its veth to the test's namespace (the .2 of a /30; the test's end is the .1). */
  uplinkIp: string;
  /** The test namespace's end of the uplink: where the control plane's packets to machines come from. */
  rootIp: string;
  /** The settings above, ready for the host agent (the root end as its HANGAR_HOST_AGENT_CONTROL_SOURCES). */
  env: Record<string, string>;
}

/** Several hosts on a shared fabric, plus an "internet" namespace they route to; see createNetworkTopology. */
export interface NetworkTopology {
  hosts: TopologyHost[];
  /** An HTTP server answering "internet\n" on ip:port, in its own namespace. */
  internet: { netns: string; ip: "198.51.100.1"; port: number };
  /** Runs `argv` inside namespace `netns` (any named one, machines' too); never throws for a non-zero exit. */
  exec(
    netns: string,
    argv: string[],
    opts?: { input?: string; timeoutMs?: number },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Kills what it started and deletes every namespace, veth and route it made. Idempotent. */
  close(): Promise<void>;
}

export interface NetworkTopologyOptions {
  /** How many hosts (1..15). */
  hosts: number;
  /** Whether to start the internet namespace's HTTP server (default true); its namespace and route exist either way. */
  internet?: boolean;
}

/** `ip` from iproute2 (root's PATH has /usr/sbin, a service's may not). */
const IP = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].find((path) => existsSync(path)) ?? "ip";

/** Where topologies claim their slot, machine-wide: one file per slot, holding the owner's pid. */
const SLOTS_DIR = "/run/hangar/test-topologies";
/** 10.(128+slot) holds the slot's machine CIDRs, so slots stop at 10.255. */
const SLOTS = 128;
/** A host's machine CIDR is a /20 at 10.(128+slot).(16*i).0, so i stops at 15. */
const MAX_HOSTS = 15;
const INTERNET_IP = "198.51.100.1";
const INTERNET_PORT = 80;
const ROUTER_IP = "10.99.0.254";
const START_TIMEOUT_MS = 10_000;

/** Every name of slot `n`: namespaces (their own, so none clashes with a parallel test file) and links in the test's namespace. */
function slotNames(n: number) {
  const prefix = `hgtopo${n}`;
  return {
    nsPrefix: `${prefix}-`,
    fabric: `${prefix}-fabric`,
    internet: `${prefix}-internet`,
    host: (i: number) => `${prefix}-h${i}`,
    // Interface names have at most 15 bytes: "hgtopo127u15" is 12.
    uplinkRootEnd: (i: number) => `${prefix}u${i}`,
  };
}

/**
 * Builds a fabric of `hosts` host namespaces and an internet namespace, in a slot claimed machine-wide.
 * Layout: a fabric namespace with a bridge; each host namespace has `underlay` on it (fd00:99::<i>/64,
 * 10.99.0.<i>/24, forwarding on, IPv4 default route via 10.99.0.254) and `uplink` to the test's
 * namespace, which routes the host's machine CIDR through it; the internet namespace is 10.99.0.254 on
 * the fabric and holds 198.51.100.1 on its lo. Nothing in the test's namespace changes except its
 * uplink veth ends and their routes: no sysctl, no firewall.
 */
export async function createNetworkTopology(o: NetworkTopologyOptions): Promise<NetworkTopology> {
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > MAX_HOSTS) {
    throw new RangeError(`a topology has 1 to ${MAX_HOSTS} hosts, not ${o.hosts}`);
  }
  const slot = await claimSlot();
  const topology = new Topology(slot, o.hosts);
  try {
    await topology.build(o.internet ?? true);
  } catch (error) {
    await topology.close();
    throw error;
  }
  return topology;
}

class Topology implements NetworkTopology {
  readonly hosts: TopologyHost[] = [];
  readonly internet: NetworkTopology["internet"];
  readonly #slot: number;
  readonly #names: ReturnType<typeof slotNames>;
  readonly #forgetExitCleanup: () => void;
  #server: ChildProcess | undefined;
  #closing: Promise<void> | undefined;

  constructor(slot: number, hostCount: number) {
    this.#slot = slot;
    this.#names = slotNames(slot);
    this.internet = { netns: this.#names.internet, ip: INTERNET_IP, port: INTERNET_PORT };
    for (let i = 1; i <= hostCount; i++) {
      const host = {
        name: `h${i}`,
        netns: this.#names.host(i),
        underlayIp: `fd00:99::${i}`,
        machineCidr: `10.${128 + slot}.${16 * i}.0/20`,
        uplinkIp: `10.127.${slot}.${4 * i + 2}`,
        rootIp: `10.127.${slot}.${4 * i + 1}`,
      };
      this.hosts.push({
        ...host,
        env: {
          HANGAR_HOST_AGENT_NETNS: host.netns,
          HANGAR_HOST_AGENT_UNDERLAY_IP: host.underlayIp,
          HANGAR_HOST_AGENT_MACHINE_CIDR: host.machineCidr,
          // The test's namespace is the control plane (proxy, gateway, checks): it reaches machines
          // through the uplink, so its packets are forwarded and must be let in.
          HANGAR_HOST_AGENT_CONTROL_SOURCES: `${host.rootIp}/32`,
        },
      });
    }
    this.#forgetExitCleanup = cleanupOnExit(() => {
      this.#server?.kill("SIGKILL");
      removeSlotObjectsSync(slot);
    });
  }

  async build(withServer: boolean): Promise<void> {
    const names = this.#names;
    await ip("netns", "add", names.fabric);
    await ip("-n", names.fabric, "link", "set", "lo", "up");
    await ip("-n", names.fabric, "link", "add", "fabric", "type", "bridge");
    await ip("-n", names.fabric, "link", "set", "fabric", "up");

    await ip("netns", "add", names.internet);
    await this.#attachToFabric(names.internet, "internet", [`${ROUTER_IP}/24`]);
    await ip("-n", names.internet, "addr", "add", `${INTERNET_IP}/32`, "dev", "lo");

    for (const [index, host] of this.hosts.entries()) await this.#buildHost(index + 1, host);
    if (withServer) await this.#startServer();
  }

  /** Joins namespace `ns` to the fabric bridge by a veth: `underlay` inside `ns`, `port` on the bridge. */
  async #attachToFabric(ns: string, port: string, addresses: string[]): Promise<void> {
    const fabric = this.#names.fabric;
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("-n", ns, "link", "add", "underlay", "type", "veth", "peer", "name", port, "netns", fabric);
    await ip("-n", fabric, "link", "set", port, "master", "fabric", "up");
    // No DAD on the underlay: its generated link-local would stay tentative for a second or two after
    // it comes up, and until then the namespace answers no neighbour solicitation and sends none of
    // its own but DAD's, so the first packets between hosts waited ~2 s (seen on a fast machine, where
    // tests connect sooner after building the topology). A real host's underlay has been up for long.
    await ip("netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.underlay.accept_dad=0");
    // nodad: a tentative address cannot be used for a second or two, and the fabric has no duplicates.
    for (const address of addresses) {
      await ip(
        "-n",
        ns,
        "addr",
        "add",
        address,
        "dev",
        "underlay",
        ...(address.includes(":") ? ["nodad"] : []),
      );
    }
    await ip("-n", ns, "link", "set", "underlay", "up");
  }

  async #buildHost(i: number, host: TopologyHost): Promise<void> {
    const ns = host.netns;
    await ip("netns", "add", ns);
    await this.#attachToFabric(ns, host.name, [`10.99.0.${i}/24`, `${host.underlayIp}/64`]);
    await ip("-n", ns, "route", "add", "default", "via", ROUTER_IP);
    // Per-namespace sysctls: the host namespace forwards between its machines, the fabric and the uplink.
    await ip("netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
    await ip("netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1");

    const rootEnd = this.#names.uplinkRootEnd(i);
    const rootIp = `10.127.${this.#slot}.${4 * i + 1}`;
    await ip("link", "add", rootEnd, "type", "veth", "peer", "name", "uplink", "netns", ns);
    await ip("addr", "add", `${rootIp}/30`, "dev", rootEnd);
    await ip("link", "set", rootEnd, "up");
    await ip("-n", ns, "addr", "add", `${host.uplinkIp}/30`, "dev", "uplink");
    await ip("-n", ns, "link", "set", "uplink", "up");
    // Goes away with the veth: the control plane (proxy, checks) reaches the host's machines this way.
    await ip("route", "add", host.machineCidr, "via", host.uplinkIp, "dev", rootEnd);
  }

  async #startServer(): Promise<void> {
    const program = `require("node:http").createServer((_, res) => res.end("internet\\n"))
      .listen(${INTERNET_PORT}, "${INTERNET_IP}", () => console.log("ready"));`;
    const child = spawn(IP, ["netns", "exec", this.#names.internet, process.execPath, "-e", program], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#server = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail("did not listen in time"), START_TIMEOUT_MS);
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(
          new ServerStartError("internet", `the internet namespace's HTTP server ${why}: ${output.trim()}`),
        );
      };
      child.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code, signal) => fail(`exited (${signal ?? `code ${code}`})`));
      child.once("error", (error) => fail(error.message));
    });
    // Keeps draining so the server never blocks on a full pipe.
    child.stdout?.resume();
    child.stderr?.resume();
  }

  exec(
    netns: string,
    argv: string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(IP, ["netns", "exec", netns, ...argv], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const timer =
        opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        // The shell's convention for a process killed by a signal (a timeout gives 137).
        resolve({ code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout, stderr });
      });
      // A program that exits without reading its input would make the write fail with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(opts.input ?? "");
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#teardown();
    return this.#closing;
  }

  async #teardown(): Promise<void> {
    const server = this.#server;
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once("exit", resolve));
      server.kill("SIGKILL");
      await exited;
    }
    await removeSlotObjects(this.#slot);
    await releaseSlot(this.#slot);
    this.#forgetExitCleanup();
  }
}

async function run(file: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { encoding: "utf8" });
    return stdout;
  } catch (cause) {
    const stderr = (cause as { stderr?: unknown }).stderr;
    throw new CommandFailedError([file, ...args], typeof stderr === "string" ? stderr : "", { cause });
  }
}

function ip(...args: string[]): Promise<string> {
  return run(IP, args);
}

/** The slot's namespaces and its links in the test's namespace that exist now (a crashed owner's too). */
function slotObjects(
  slot: number,
  netnsList: string,
  linkList: string,
): { netns: string[]; links: string[] } {
  const names = slotNames(slot);
  const netns = netnsList
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(names.nsPrefix));
  const rootEnd = new RegExp(`^\\d+: (${names.uplinkRootEnd(0).slice(0, -1)}\\d+)[@:]`);
  const links = linkList
    .split("\n")
    .map((line) => rootEnd.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
  return { netns, links };
}

/** The pids `ip netns pids` listed. */
function pidsIn(netnsPids: string): number[] {
  return netnsPids
    .split("\n")
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
}

/**
 * Kills what still runs in the slot's namespaces (a dead owner's internet server, a test's server
 * left running), deletes the slot's links (which takes their routes along) and then its namespaces.
 * The links go first and explicitly: a namespace's deletion tears its veths down in the background,
 * and close() promises that the test's namespace is clean when it resolves.
 */
async function removeSlotObjects(slot: number): Promise<void> {
  const { netns, links } = slotObjects(slot, await ip("netns", "list"), await ip("-o", "link", "show"));
  for (const ns of netns) killAll(pidsIn(await ip("netns", "pids", ns).catch(() => "")));
  for (const link of links) await ip("link", "delete", link).catch(() => undefined);
  for (const ns of netns) await ip("netns", "delete", ns);
}

/** removeSlotObjects for the exit cleanup, which cannot await. */
function removeSlotObjectsSync(slot: number): void {
  const list = (...args: string[]) => execFileSync(IP, args, { encoding: "utf8" });
  const { netns, links } = slotObjects(slot, list("netns", "list"), list("-o", "link", "show"));
  for (const ns of netns) killAll(pidsIn(list("netns", "pids", ns)));
  for (const link of links) {
    try {
      execFileSync(IP, ["link", "delete", link], { stdio: "ignore" });
    } catch {
      // Gone with its namespace meanwhile.
    }
  }
  for (const ns of netns) execFileSync(IP, ["netns", "delete", ns], { stdio: "ignore" });
  execFileSync("rm", ["-f", join(SLOTS_DIR, String(slot))]);
}

/** Whether a slot's owner still runs; a zombie (a container's pid 1 may never reap it) does not. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * Claims the first free slot: a file holding our pid, hard-linked into place (exclusive like O_EXCL,
 * and never seen half-written). A slot whose owner died is reclaimed (its leftover kernel objects
 * deleted). The stale file is removed under flock(1), and only if it still names the dead owner, so
 * two test files reclaiming the same slot at once cannot delete each other's fresh claim.
 */
async function claimSlot(): Promise<number> {
  await mkdir(SLOTS_DIR, { recursive: true });
  const claim = join(SLOTS_DIR, `.claim-${process.pid}-${randomUUID()}`);
  await writeFile(claim, String(process.pid));
  try {
    for (let slot = 0; slot < SLOTS; slot++) {
      const file = join(SLOTS_DIR, String(slot));
      for (;;) {
        try {
          await link(claim, file);
          await removeSlotObjects(slot);
          return slot;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        const owner = (await readFile(file, "utf8").catch(() => "")).trim();
        if (owner !== "" && isAlive(Number(owner))) break;
        if (owner === "") continue; // released meanwhile
        await run("flock", [
          join(SLOTS_DIR, ".lock"),
          "sh",
          "-c",
          'if [ "$(cat "$1" 2>/dev/null)" = "$2" ]; then rm -f "$1"; fi',
          "sh",
          file,
          owner,
        ]);
      }
    }
  } finally {
    await rm(claim, { force: true });
  }
  throw new Error(
    `every one of the ${SLOTS} network topology slots in ${SLOTS_DIR} is taken by a live process`,
  );
}

async function releaseSlot(slot: number): Promise<void> {
  await rm(join(SLOTS_DIR, String(slot)), { force: true });
}
