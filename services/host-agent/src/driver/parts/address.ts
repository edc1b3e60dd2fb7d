import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { HostNetwork } from "../../network/host-network.js";
import { nextPrivateIp, probePort } from "../address.js";
import { MachineStartError } from "../errors.js";
import { claimNetnsAddress, DEFAULT_MACHINE_CIDR, isNetnsAddress, releaseNetnsAddress } from "../netns.js";
import { listMachineIds, MachineDir } from "../state.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/** The machine folder's note of the namespace address it claimed, written before anything else records it. */
const CLAIM_NOTE = "netns-address";

export async function readClaimNote(machineDir: string): Promise<string | undefined> {
  return readFile(join(machineDir, CLAIM_NOTE), "utf8").then(
    (ip) => ip.trim() || undefined,
    () => undefined,
  );
}

/** A machine's private address and the port its app listens on. */
export interface MachineAddress {
  privateIp: string;
  port: number;
}

/**
 * The machine's private address and port. A machine keeps its address across runs (and its port
 * while it is free); addresses of machines in their own network namespace are claimed host-wide, so
 * agents of other state folders never hand out the same one.
 */
export class AddressPart implements MachinePart {
  readonly name = "address";
  /** Every machine with state, so a machine keeps its ip across runs; loaded from run.json on first use. */
  #addresses: Map<string, MachineAddress> | null = null;

  /**
   * `hostIp` is where a new port is checked free; `holdsPort(id)` tells whether another machine's
   * port is in use now (it runs, or is being started). Namespace addresses come from the host
   * network's machine CIDR (without one, DEFAULT_MACHINE_CIDR in the agent's own namespace).
   */
  constructor(
    private readonly stateDir: string,
    private readonly hostIp: string,
    private readonly holdsPort: (machineId: string) => boolean,
    private readonly network?: Pick<HostNetwork, "netns" | "machineCidr">,
    /** Where namespace addresses are claimed (tests); CLAIMS_DIR by default. */
    private readonly claimsDir?: string,
  ) {}

  get #cidr(): string {
    return this.network?.machineCidr ?? DEFAULT_MACHINE_CIDR;
  }

  /** Reads the addresses of every machine with a run record (once). */
  async load(): Promise<Map<string, MachineAddress>> {
    if (this.#addresses) return this.#addresses;
    const loaded = new Map<string, MachineAddress>();
    for (const machineId of await listMachineIds(this.stateDir)) {
      const run = await new MachineDir(this.stateDir, machineId).readRun();
      if (run) loaded.set(machineId, { privateIp: run.privateIp, port: run.port });
    }
    this.#addresses ??= loaded;
    return this.#addresses;
  }

  async prepare(run: RunSetup): Promise<void> {
    const addresses = await this.load();
    const { spec } = run;
    const { machineId } = spec;
    // A machine in its own network namespace is reached at its end of a veth pair, on its own port.
    const netns = spec.sandbox?.network === "netns";
    const previous = addresses.get(machineId);
    // A previous address of the other kind (the host's network setting changed) is not kept.
    // So is one outside the machine CIDR (it changed).
    const kept =
      previous && netns === isNetnsAddress(previous.privateIp, this.#cidr) ? previous.privateIp : undefined;
    let privateIp = spec.privateIp ?? kept;
    if (netns && spec.privateIp === undefined) {
      // Host-wide claims: other agents on this host hand out /30s from the same range.
      const used = new Set(
        [...addresses.entries()].filter(([id]) => id !== machineId).map(([, a]) => a.privateIp),
      );
      // The note in the machine's folder names its last claim, made before its run record: a start
      // that ended in between (the agent died) leaves it the machine's, not behind. Then the run
      // record's address.
      const noted = await readClaimNote(run.dir.path);
      const preferred = [...new Set([noted, kept])].filter(
        (ip): ip is string => ip !== undefined && isNetnsAddress(ip, this.#cidr),
      );
      privateIp =
        (await claimNetnsAddress(machineId, used, preferred, {
          cidr: this.#cidr,
          ...(this.network?.netns !== undefined ? { hostNs: this.network.netns } : {}),
          ...(this.claimsDir !== undefined ? { claimsDir: this.claimsDir } : {}),
        })) ?? undefined;
      if (privateIp === undefined) throw new MachineStartError(machineId, "no free private address");
      if (privateIp !== noted) await writeFile(join(run.dir.path, CLAIM_NOTE), privateIp, { mode: 0o600 });
      // An older claim of the machine's that it no longer uses goes (only if it is the machine's).
      for (const old of preferred)
        if (old !== privateIp) await releaseNetnsAddress(machineId, old, this.claimsDir);
    } else if (privateIp === undefined) {
      const used = new Set([...addresses.values()].map((a) => a.privateIp));
      privateIp = nextPrivateIp(used) ?? undefined;
      if (privateIp === undefined) throw new MachineStartError(machineId, "no free private address");
    }
    run.privateIp = privateIp;
    // Only a host network (with its firewall) puts a machine on its org's 6PN.
    run.privateIpv6 = netns && this.network ? (spec.sixpn?.address ?? "") : "";
    // Reserved before the port probe awaits, so a concurrent start cannot take the same ip.
    addresses.set(machineId, { privateIp, port: spec.port ?? 0 });
    if (spec.port !== undefined) {
      run.port = spec.port;
      return;
    }
    const taken = () => {
      const ports = new Set<number>();
      for (const [id, a] of addresses) if (id !== machineId && this.holdsPort(id)) ports.add(a.port);
      return ports;
    };
    // A machine keeps its port across runs when it is still free.
    const candidates = previous?.port ? [previous.port] : [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = await probePort(this.hostIp, candidates.shift() ?? 0).catch(() => null);
      if (port !== null && !taken().has(port)) {
        addresses.set(machineId, { privateIp, port });
        run.port = port;
        return;
      }
    }
    throw new MachineStartError(machineId, `no free port on ${this.hostIp}`);
  }

  /** Gives up the machine's host-wide claim on a namespace address, and forgets its address. */
  async release({ machineId, dir }: MachineTeardown): Promise<void> {
    const addresses = new Set([(await this.load()).get(machineId)?.privateIp, await readClaimNote(dir.path)]);
    // Only a claim the machine holds goes (a loopback address has none), whatever the CIDR is now.
    for (const address of addresses)
      if (address) await releaseNetnsAddress(machineId, address, this.claimsDir);
    this.#addresses?.delete(machineId);
  }
}
