import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Machines in namespaces get a /30 each from this /16: the host end is .1 of it, the machine .2. */
const PREFIX = "172.30";
const SUBNETS = 65536 / 4;

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

/** The machine's address in /30 number `index`. */
function machineAddress(index: number): string {
  const base = index * 4;
  return `${PREFIX}.${base >> 8}.${(base & 0xff) + 2}`;
}

/** Whether `ip` is a machine's namespace address (the .2 of one of the /30s). */
export function isNetnsAddress(ip: string): boolean {
  const m = /^172\.30\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  return m !== null && Number(m[1]) < 256 && Number(m[2]) < 256 && Number(m[2]) % 4 === 2;
}

/** Where agents claim /30s: one file per machine address, holding the machine id. */
export const CLAIMS_DIR = "/run/hangar/netns-addresses";

async function claimOwner(claimsDir: string, ip: string): Promise<string | undefined> {
  return readFile(join(claimsDir, ip), "utf8").then(
    (id) => id.trim(),
    () => undefined,
  );
}

/**
 * Claims a machine address for `machineId`, host-wide: the first free one (or `preferred`, if it is
 * free or already the machine's). A claim is a file created with O_EXCL, so agents of different
 * state folders, or two platforms on one host, never hand out the same /30. Addresses some veth on
 * the host already holds (a namespace left by an older agent) are skipped too.
 */
export async function claimNetnsAddress(
  machineId: string,
  skip: ReadonlySet<string>,
  preferred?: string,
  claimsDir = CLAIMS_DIR,
): Promise<string | null> {
  await mkdir(claimsDir, { recursive: true });
  const onHost = await hostVethAddresses();
  const candidates = preferred ? [preferred] : [];
  for (let i = 0; i < SUBNETS; i++) candidates.push(machineAddress(i));
  for (const ip of candidates) {
    if (ip !== preferred && (skip.has(ip) || onHost.has(ip))) continue;
    try {
      await writeFile(join(claimsDir, ip), machineId, { flag: "wx" });
      return ip;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if ((await claimOwner(claimsDir, ip)) === machineId) return ip;
    }
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
}

/** Machine addresses whose /30 a veth on this host holds (172.30.x.y/30, the host end). */
async function hostVethAddresses(): Promise<Set<string>> {
  const { stdout } = await exec(IP, ["-o", "-4", "addr", "show"]);
  const used = new Set<string>();
  for (const m of stdout.matchAll(/inet 172\.30\.(\d+)\.(\d+)\/30/g)) {
    used.add(`${PREFIX}.${m[1]}.${Number(m[2]) + 1}`);
  }
  return used;
}

/** The host end of the /30 that holds machine address `ip`. */
export function hostEnd(ip: string): string {
  const parts = ip.split(".").map(Number);
  return `${parts[0]}.${parts[1]}.${parts[2]}.${(parts[3] ?? 2) - 1}`;
}

async function ip(...args: string[]): Promise<void> {
  try {
    await exec(IP, args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(" ")}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

function netnsExists(machineId: string): boolean {
  return existsSync(join("/run/netns", netnsName(machineId)));
}

async function linkExists(name: string): Promise<boolean> {
  return exec(IP, ["link", "show", "dev", name]).then(
    () => true,
    () => false,
  );
}

/**
 * Makes sure the machine has its network namespace, `hangar-<id>`, joined to the host by a veth pair
 * on the /30 of `address` (the machine's end is eth0, with a default route to the host's end).
 * Namespaces outlive the agent and survive the machine's stops: only destroy removes them.
 */
export async function ensureNetns(machineId: string, address: string): Promise<void> {
  const ns = netnsName(machineId);
  const veth = vethName(machineId);
  if (netnsExists(machineId) && (await linkExists(veth))) return;
  // A set-up cut short (agent killed half-way) is done again from scratch.
  await removeNetns(machineId);
  const host = hostEnd(address);
  const peer = `${veth}p`;
  await ip("netns", "add", ns);
  await ip("link", "add", veth, "type", "veth", "peer", "name", peer);
  await ip("link", "set", peer, "netns", ns);
  await ip("addr", "add", `${host}/30`, "dev", veth);
  await ip("link", "set", veth, "up");
  await ip("-n", ns, "link", "set", peer, "name", "eth0");
  await ip("-n", ns, "addr", "add", `${address}/30`, "dev", "eth0");
  await ip("-n", ns, "link", "set", "eth0", "up");
  await ip("-n", ns, "link", "set", "lo", "up");
  await ip("-n", ns, "route", "add", "default", "via", host);
}

/** Deletes the machine's namespace and its veth pair, if they exist. */
export async function removeNetns(machineId: string): Promise<void> {
  if (netnsExists(machineId)) await ip("netns", "delete", netnsName(machineId));
  // Deleting the namespace deletes the pair, but the kernel tears the namespace down in the
  // background: the host end can still be listed and then be gone by the time it is deleted. A pair
  // left by a cut-short set-up goes here; one the kernel removed meanwhile is not an error.
  const veth = vethName(machineId);
  if (!(await linkExists(veth))) return;
  try {
    await ip("link", "delete", veth);
  } catch (err) {
    if (await linkExists(veth)) throw err;
  }
}
