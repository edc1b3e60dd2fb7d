import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { withDirLock } from "@hangar/oci";

/**
 * IPv4 forwarding on the host's egress interfaces while build networks use them. A reply to a
 * build comes in on the egress interface and is forwarded to the build's veth, which the kernel
 * does only where that interface forwards; turning on net.ipv4.ip_forward for every interface
 * would make the host a router for all of them. So each build network holds the interfaces it
 * leaves through: the first holder saves the interface's setting and turns forwarding on, the last
 * one puts the saved setting back. Holders are files (one per build network, naming its process)
 * shared by every builder of the host, under a lock folder.
 */
export class EgressForwarding {
  constructor(private readonly dir: string) {}

  /** Holds forwarding on for `dev` in the name of build network `holder` (of this process). */
  async hold(dev: string, holder: string): Promise<void> {
    await this.locked(async () => {
      const saved = join(this.dir, `${dev}.saved`);
      if ((await readFile(saved, "utf8").catch(() => undefined)) === undefined) {
        await writeFile(saved, await readFile(sysctlPath(dev), "utf8"));
      }
      await mkdir(join(this.dir, `${dev}.holders`), { recursive: true });
      await writeFile(join(this.dir, `${dev}.holders`, holder), String(process.pid));
      await writeFile(sysctlPath(dev), "1");
    });
  }

  /** Lets go of `dev` for `holder`; with no live holder left, the interface's own setting comes back. */
  async release(dev: string, holder: string): Promise<void> {
    await this.locked(async () => {
      const holders = join(this.dir, `${dev}.holders`);
      await rm(join(holders, holder), { force: true });
      for (const other of await readdir(holders).catch(() => [])) {
        const pid = Number(await readFile(join(holders, other), "utf8").catch(() => ""));
        if (processAlive(pid)) return;
        await rm(join(holders, other), { force: true });
      }
      const saved = join(this.dir, `${dev}.saved`);
      const value = await readFile(saved, "utf8").catch(() => undefined);
      // Forwarding turned on for every interface meanwhile (a host agent starting on this host) is
      // wanted by someone else: it stays. An interface that went away has no setting to put back.
      const all = (await readFile(ALL_FORWARDING, "utf8").catch(() => "0")).trim();
      if (value !== undefined && all !== "1") {
        await writeFile(sysctlPath(dev), value.trim()).catch(() => undefined);
      }
      await rm(saved, { force: true });
    });
  }

  private async locked<T>(work: () => Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    return withDirLock(join(this.dir, ".lock"), work);
  }
}

const ALL_FORWARDING = "/proc/sys/net/ipv4/conf/all/forwarding";

function sysctlPath(dev: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(dev)) throw new Error(`not an interface name: ${JSON.stringify(dev)}`);
  return `/proc/sys/net/ipv4/conf/${dev}/forwarding`;
}

/** Whether a process is alive (EPERM: it is, someone else's). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
