import { CommandError, sendCommand, subjects, type WakeRequest } from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import { type SleepingMachine, WakeRefusedError, type Waker } from "./engine/mod.js";

export interface CommandWakerOptions {
  /** The MACHINES sequence of a machine's last message as the proxy folded it (the route table's). */
  machineSeq(app: string, machineId: string): number;
  /** Default: `cmd.machines.wake`; tests give their own. */
  subject?: string;
}

// Codes that say the command never got a decision: the wake failed, it was not refused.
const NOT_DECIDED = new Set(["unavailable", "timeout", "internal"]);

/**
 * Wakes machines through the gateway, which owns the machine commands: a `cmd.machines.wake`
 * request with the sequence the proxy saw the machine at. The gateway derives the start's command id
 * from it, so proxies that wake the same sleeping machine record one start.
 */
export class CommandWaker implements Waker {
  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: CommandWakerOptions,
  ) {}

  async start(app: string, machine: SleepingMachine): Promise<void> {
    const req: WakeRequest = {
      app,
      machine_id: machine.machineId,
      machines_seq: this.opts.machineSeq(app, machine.machineId),
    };
    try {
      await sendCommand(this.nc, this.opts.subject ?? subjects.wake, req);
    } catch (err) {
      if (err instanceof CommandError && !NOT_DECIDED.has(err.code)) {
        throw new WakeRefusedError(err.code, err.message, { cause: err });
      }
      throw err;
    }
  }
}
