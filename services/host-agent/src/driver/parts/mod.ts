import type { Logger } from "@hangar/telemetry";
import type { HostNetwork } from "../../network/host-network.js";
import type { VolumeDisks } from "../../volumes/disk.js";
import type { SuspendMode } from "../cgroup.js";
import { AddressPart } from "./address.js";
import { CgroupPart } from "./cgroup.js";
import { FilesPart } from "./files.js";
import { NetnsPart } from "./netns.js";
import { type LineSink, OutputPart } from "./output.js";
import type { MachinePart } from "./part.js";
import { RootfsPart } from "./rootfs.js";
import { VolumesPart } from "./volumes.js";

export type { MachineAddress } from "./address.js";
export type { SuspendInfo } from "./cgroup.js";
export type { LineSink, RunOutput } from "./output.js";
export { STREAMS } from "./output.js";
export type { MachinePart, MachineTeardown, RunSetup } from "./part.js";
export { AddressPart, CgroupPart, OutputPart };

/** What the parts of a driver's machines need from it. */
export interface PartsOptions {
  stateDir: string;
  hostIp: string;
  suspend: "auto" | SuspendMode;
  logger: Pick<Logger, "warn">;
  /** Whether a machine's port is in use now (it runs, or a start is under way). */
  holdsPort: (machineId: string) => boolean;
  /** Where kept lines go. */
  sink: LineSink;
  /** The bound of a machine's kept output file and raw output files. */
  logBytes?: number;
  /** The host's network (namespace, 6PN, firewall); without it, namespaces join the agent's own network, IPv4 only. */
  network?: HostNetwork;
  /** The host's volume disks; without them, a machine with volumes cannot start. */
  volumes?: VolumeDisks;
}

/** The resources of a machine, each one part, and the list launch walks forward and destroy backward. */
export interface MachineParts {
  address: AddressPart;
  cgroup: CgroupPart;
  output: OutputPart;
  /** In launch order: an address before the namespace that uses it, the cgroup (killing what an earlier run left) before the root filesystem is mounted again, the root filesystem (the image's users) before the files written into it and the volumes. */
  all: readonly MachinePart[];
  /**
   * `all` cut into chains that depend on nothing in another chain: launch prepares the chains at
   * once, each in its order (the network namespace's commands overlap the root filesystem's mounts).
   */
  chains: readonly (readonly MachinePart[])[];
}

/** Wires the parts every machine gets; the one place that lists them. */
export function machineParts(opts: PartsOptions): MachineParts {
  const address = new AddressPart(opts.stateDir, opts.hostIp, opts.holdsPort, opts.network);
  const cgroup = new CgroupPart(opts.stateDir, opts.suspend, opts.logger);
  const output = new OutputPart(opts.sink, opts.logBytes);
  const chains = [
    [address, new NetnsPart(opts.network)],
    [cgroup, new RootfsPart(opts.stateDir), new FilesPart(), new VolumesPart(opts.volumes)],
    [output],
  ];
  return { address, cgroup, output, all: chains.flat(), chains };
}
