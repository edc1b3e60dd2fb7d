import type { HostNetwork } from "../../network/host-network.js";
import { ensureNetns, removeNetns } from "../netns.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/**
 * The network namespace of a sandboxed machine that asks for one: `hangar-<id>`, joined to the host's
 * network by a veth pair on the /30 of its address. With a host network (the agent's), the pair's host
 * end, the machine's 6PN address and the firewall are that network's; without one (tests of the
 * driver alone), the pair joins the agent's own namespace, IPv4 only, with no firewall. It survives
 * stops; only destroy removes it.
 */
export class NetnsPart implements MachinePart {
  readonly name = "network namespace";

  constructor(private readonly network?: Pick<HostNetwork, "ensureMachine" | "removeMachine">) {}

  async prepare(run: RunSetup): Promise<void> {
    if (run.spec.sandbox?.network !== "netns") return;
    const { machineId, sixpn } = run.spec;
    if (this.network) {
      await this.network.ensureMachine({ machineId, ipv4: run.privateIp, ...(sixpn ? { sixpn } : {}) });
    } else {
      await ensureNetns({ machineId, ipv4: run.privateIp });
    }
  }

  /** Removes whatever namespace the machine has: the host's network setting may have changed since its last run. */
  async release({ machineId }: MachineTeardown): Promise<void> {
    if (this.network) await this.network.removeMachine(machineId);
    await removeNetns(machineId);
  }
}
