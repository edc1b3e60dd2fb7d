import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { isIPv4 } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { ipv4ToNumber, numberToIpv4 } from "@hangar/oci";

const exec = promisify(execFile);

/** Where machines' /30s come from when the host sets no block of its own: the host end is .1 of one, the machine .2. */
export const DEFAULT_MACHINE_CIDR = "172.30.0.0/16";

/** The link-local addresses of a veth pair: the machine's IPv6 default route goes to the host end's. */
export const HOST_END_V6 = "fe80::1";
const MACHINE_END_V6 = "fe80::2";

/** `ip` from iproute2, looked up once (root's PATH has /usr/sbin, a service's may not). */
export const IP =
  ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].find((path) => existsSync(path)) ?? "ip";

/** The name of a machine's network namespace. */
export function netnsName(machineId: string): string {
  return `hangar-${machineId}`;
}

/** The host end of the machine's veth pair: interface names have at most 15 bytes, machine ids 64. */
export function vethName(machineId: string): string {
  return `hv${createHash("sha256").update(machineId).digest("hex").slice(0, 12)}`;
}

/** An IPv4 block of machine /30s: its first address and how many /30s it holds. */
interface MachineBlock {
  base: number;
  subnets: number;
}

/** Parses `a.b.c.d/len` (len <= 30); throws on anything else. */
export function machineBlock(cidr: string): MachineBlock {
  const [address = "", length = ""] = cidr.split("/");
  const bits = Number(length);
  if (!isIPv4(address) || !/^\d{1,2}$/.test(length) || bits > 30) {
    throw new Error(`not an IPv4 block of /30 or larger: ${JSON.stringify(cidr)}`);
  }
  const size = 2 ** (32 - bits);
  return { base: ipv4ToNumber(address) - (ipv4ToNumber(address) % size), subnets: size / 4 };
}

/** The machine's address in /30 number `index` of the block. */
function machineAddress(block: MachineBlock, index: number): string {
  return numberToIpv4(block.base + index * 4 + 2);
}

/** Whether `ip` is a machine's namespace address in `cidr` (the .2 of one of its /30s). */
export function isNetnsAddress(ip: string, cidr = DEFAULT_MACHINE_CIDR): boolean {
  if (!isIPv4(ip)) return false;
  const block = machineBlock(cidr);
  const offset = ipv4ToNumber(ip) - block.base;
  return offset >= 0 && offset < block.subnets * 4 && offset % 4 === 2;
}

/** Where agents claim /30s: one file per machine address, holding the machine id. */
export const CLAIMS_DIR = "/run/hangar/netns-addresses";

async function claimOwner(claimsDir: string, ip: string): Promise<string | undefined> {
  return readFile(join(claimsDir, ip), "utf8").then(
    (id) => id.trim(),
    () => undefined,
  );
}

/** Where a claim looks: the block (default DEFAULT_MACHINE_CIDR), the claims folder, and the namespace whose veths it checks. */
export interface ClaimOptions {
  cidr?: string;
  claimsDir?: string;
  /** The host's network namespace (undefined: the agent's own). */
  hostNs?: string;
}

/**
 * Claims a machine address in the block for `machineId`, host-wide: the first free one (or the
 * first of `preferred` that is free or already the machine's). A claim is a file created with O_EXCL, so
 * agents of different state folders, or two platforms on one host, never hand out the same /30.
 * Addresses some veth of the host's namespace already holds (a namespace left by an older agent) are
 * skipped too. The folder is listed once and claimed addresses are passed over without being read:
 * a start costs the same with thousands of machines on the host as with none.
 */
export async function claimNetnsAddress(
  machineId: string,
  skip: ReadonlySet<string>,
  preferred?: string | readonly string[],
  options: ClaimOptions = {},
): Promise<string | null> {
  const claimsDir = options.claimsDir ?? CLAIMS_DIR;
  const block = machineBlock(options.cidr ?? DEFAULT_MACHINE_CIDR);
  await mkdir(claimsDir, { recursive: true });
  const found = await claimIn(machineId, skip, preferred, options, claimsDir, block);
  if (found !== null || !vethSnapshots.has(options.hostNs ?? "")) return found;
  // Full as this agent last listed the host's veths: some may have gone since (another agent's).
  vethSnapshots.delete(options.hostNs ?? "");
  return claimIn(machineId, skip, preferred, options, claimsDir, block);
}

async function claimIn(
  machineId: string,
  skip: ReadonlySet<string>,
  preferred: string | readonly string[] | undefined,
  options: ClaimOptions,
  claimsDir: string,
  block: MachineBlock,
): Promise<string | null> {
  const [onHost, claimed] = await Promise.all([
    hostVethAddressesOnce(options.hostNs),
    readdir(claimsDir).then((names) => new Set(names)),
  ]);
  /** Whether the machine holds `ip` now: claimed by this call, or already its own. */
  const claim = async (ip: string): Promise<boolean> => {
    try {
      await writeFile(join(claimsDir, ip), machineId, { flag: "wx" });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      return (await claimOwner(claimsDir, ip)) === machineId;
    }
  };
  const wanted = preferred === undefined ? [] : typeof preferred === "string" ? [preferred] : preferred;
  for (const ip of wanted) if (await claim(ip)) return ip;
  for (let i = 0; i < block.subnets; i++) {
    const ip = machineAddress(block, i);
    if (wanted.includes(ip) || skip.has(ip) || onHost.has(ip) || claimed.has(ip)) continue;
    // Lost only to a claim made since the listing: the next one is tried.
    if (await claim(ip)) return ip;
  }
  return null;
}

/** Gives up the machine's claim on `ip` (destroy), unless another machine holds it. */
export async function releaseNetnsAddress(
  machineId: string,
  ip: string,
  claimsDir = CLAIMS_DIR,
): Promise<void> {
  if ((await claimOwner(claimsDir, ip)) === machineId) await rm(join(claimsDir, ip), { force: true });
  // Its veth goes with it (destroy): the address is free for this agent's next claims again.
  for (const snapshot of vethSnapshots.values())
    snapshot.then(
      (addresses) => addresses.delete(ip),
      () => undefined,
    );
}

/** `ip` in namespace `ns` (`-n`), or in the agent's own when undefined. */
function inNs(ns: string | undefined, args: string[]): string[] {
  return ns === undefined ? args : ["-n", ns, ...args];
}

/**
 * Machine addresses whose /30 a veth of the namespace held when this process first asked (the host
 * end, .1): every veth made since was claimed first, by this agent or another, so only what predates
 * the claims (a namespace left by an older agent) needs the listing, and a start spawns no `ip` for it.
 * An address this process releases leaves it; a block that looks full is listed again.
 */
const vethSnapshots = new Map<string, Promise<Set<string>>>();

function hostVethAddressesOnce(hostNs: string | undefined): Promise<Set<string>> {
  const key = hostNs ?? "";
  let snapshot = vethSnapshots.get(key);
  if (snapshot === undefined) {
    snapshot = hostVethAddresses(hostNs);
    vethSnapshots.set(key, snapshot);
    snapshot.catch(() => vethSnapshots.delete(key));
  }
  return snapshot;
}

/** Machine addresses whose /30 a veth of the namespace holds (the host end, .1). */
async function hostVethAddresses(hostNs: string | undefined): Promise<Set<string>> {
  const { stdout } = await exec(IP, inNs(hostNs, ["-o", "-4", "addr", "show"]));
  const used = new Set<string>();
  for (const m of stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\/30/g)) {
    used.add(machineEnd(m[1] as string));
  }
  return used;
}

/** The host end of the /30 that holds machine address `ip`. */
export function hostEnd(ip: string): string {
  return numberToIpv4(ipv4ToNumber(ip) - 1);
}

/** The machine's address of the /30 whose host end is `ip`. */
export function machineEnd(ip: string): string {
  return numberToIpv4(ipv4ToNumber(ip) + 1);
}

async function ip(...args: string[]): Promise<string> {
  try {
    return (await exec(IP, args)).stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(" ")}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

function netnsExists(machineId: string): boolean {
  return existsSync(join("/run/netns", netnsName(machineId)));
}

async function linkExists(ns: string | undefined, name: string): Promise<boolean> {
  return exec(IP, inNs(ns, ["link", "show", "dev", name])).then(
    () => true,
    () => false,
  );
}

/** Runs `ip -batch -` in namespace `ns` (or the agent's own): one process for many changes, stopping at the first failure. */
function ipBatch(ns: string | undefined, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(IP, inNs(ns, ["-batch", "-"]), (err, _stdout, stderr) => {
      if (err)
        reject(
          new Error(`ip ${inNs(ns, ["-batch"]).join(" ")}: ${stderr.trim() || err.message}`, { cause: err }),
        );
      else resolve();
    });
    // An ip that fails before reading its input reports through the callback, not as EPIPE.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(`${lines.join("\n")}\n`);
  });
}

/** The global addresses (`addr/len`) of a link; null when the link does not exist. */
async function globalAddresses(ns: string | undefined, dev: string): Promise<string[] | null> {
  let shown: string;
  try {
    shown = (await exec(IP, inNs(ns, ["-j", "addr", "show", "dev", dev]))).stdout;
  } catch {
    return null;
  }
  return (
    JSON.parse(shown) as Array<{ addr_info?: Array<{ local: string; prefixlen: number; scope: string }> }>
  )
    .flatMap((link) => link.addr_info ?? [])
    .filter((a) => a.scope !== "link" && a.scope !== "host")
    .map((a) => `${a.local}/${a.prefixlen}`);
}

/** The batch lines that make a link's global addresses exactly `wanted`, removing what an older setting left. */
function addressLines(dev: string, present: readonly string[], wanted: readonly string[]): string[] {
  return [
    ...present.filter((a) => !wanted.includes(a)).map((a) => `addr del ${a} dev ${dev}`),
    ...wanted
      .filter((a) => !present.includes(a))
      .map((a) => `addr add ${a} dev ${dev}${a.includes(":") ? " nodad" : ""}`),
  ];
}

/** A machine's network as the namespace part sets it up. */
export interface NetnsLink {
  machineId: string;
  /** Its IPv4 address, the .2 of a /30. */
  ipv4: string;
  /** Its 6PN address, if it has one. */
  ipv6?: string;
}

/**
 * Makes sure the machine has its network namespace, `hangar-<id>`, joined to the host's namespace
 * (`hostNs`, or the agent's own) by a veth pair: the machine's end is eth0, with the /30 of its IPv4
 * address and a default route to the host's end, and, with a 6PN address, that address (/128) and an
 * IPv6 default route to the host end's link-local; the host's namespace routes the address to the
 * veth. Only what is missing or wrong is changed, so re-ensuring a running machine (a restarted
 * agent) cuts none of its connections. Namespaces outlive the agent and survive the machine's stops:
 * only destroy removes them.
 */
export async function ensureNetns(
  link: NetnsLink,
  hostNs?: string,
  /** Runs the host end's changes (the pair, its addresses and the /128 route): the host network serializes them with its other route changes. */
  hostSide: (work: () => Promise<void>) => Promise<void> = (work) => work(),
): Promise<void> {
  const ns = netnsName(link.machineId);
  const veth = vethName(link.machineId);
  const host = hostEnd(link.ipv4);
  const existed = netnsExists(link.machineId);
  // Not batched with the rest: `ip -n` runs its batch in a mount namespace of its own, where the
  // namespace's bind mount would stay.
  if (!existed) await ip("netns", "add", ns);
  // A namespace made just now has no pair yet (a pair goes with its namespace, and removeNetns
  // deletes the host end): only an older namespace's is looked for.
  const hostPresent = existed ? await globalAddresses(hostNs, veth) : null;
  const created = hostPresent === null;
  // An eth0 whose host end is elsewhere (the host's namespace setting changed) makes way for the new pair.
  if (created && existed) await ip("-n", ns, "link", "delete", "eth0").catch(() => undefined);
  const machinePresent = created ? [] : ((await globalAddresses(ns, "eth0")) ?? []);
  // No generated link-locals: they would be tentative (DAD) for a second or more; the fixed ones are not.
  const fresh = (dev: string) => (created ? [`link set ${dev} addrgenmode none`] : []);
  const hostLines = [
    ...(created ? [`link add ${veth} type veth peer name eth0 netns ${ns}`] : []),
    ...fresh(veth),
    ...addressLines(veth, hostPresent ?? [], [`${host}/30`]),
    `addr replace ${HOST_END_V6}/64 dev ${veth} nodad`,
    `link set ${veth} up`,
    ...(link.ipv6 ? [`route replace ${link.ipv6}/128 dev ${veth}`] : []),
  ];
  await hostSide(async () => {
    try {
      await ipBatch(hostNs, hostLines);
    } catch (err) {
      // A host end left without its namespace (the namespace's file removed by hand): it goes, once.
      if (existed || !(await linkExists(hostNs, veth))) throw err;
      await ip(...inNs(hostNs, ["link", "delete", veth]));
      await ipBatch(hostNs, hostLines);
    }
  });
  await ipBatch(ns, [
    ...fresh("eth0"),
    ...addressLines("eth0", machinePresent, [`${link.ipv4}/30`, ...(link.ipv6 ? [`${link.ipv6}/128`] : [])]),
    `addr replace ${MACHINE_END_V6}/64 dev eth0 nodad`,
    "link set eth0 up",
    "link set lo up",
    `route replace default via ${host}`,
    ...(link.ipv6 ? [`route replace ::/0 via ${HOST_END_V6} dev eth0`] : []),
  ]);
}

/** Deletes the machine's namespace and its veth pair (in `hostNs`, or the agent's own), if they exist. */
export async function removeNetns(machineId: string, hostNs?: string): Promise<void> {
  if (netnsExists(machineId)) await ip("netns", "delete", netnsName(machineId));
  // Deleting the namespace deletes the pair, but the kernel tears the namespace down in the
  // background: the host end can still be listed and then be gone by the time it is deleted. A pair
  // left by a cut-short set-up goes here; one the kernel removed meanwhile is not an error.
  const veth = vethName(machineId);
  if (!(await linkExists(hostNs, veth))) return;
  try {
    await ip(...inNs(hostNs, ["link", "delete", veth]));
  } catch (err) {
    if (await linkExists(hostNs, veth)) throw err;
  }
}
