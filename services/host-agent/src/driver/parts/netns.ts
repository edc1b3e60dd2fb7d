import { ensureNetns, removeNetns } from "../netns.js";
import type { MachinePart, MachineTeardown, RunSetup } from "./part.js";

/**
 * The network namespace of a sandboxed machine that asks for one: `hangar-<id>`, joined to the host
 * by a veth pair on the /30 of its address. It survives stops; only destroy removes it.
 */
export class NetnsPart implements MachinePart {
  readonly name = "network namespace";

  async prepare(run: RunSetup): Promise<void> {
    if (run.spec.sandbox?.network === "netns") await ensureNetns(run.spec.machineId, run.privateIp);
  }

  /** Removes whatever namespace the machine has: the host's network setting may have changed since its last run. */
  async release({ machineId }: MachineTeardown): Promise<void> {
    await removeNetns(machineId);
  }
}
