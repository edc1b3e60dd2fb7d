import {
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { type AggregateStream, CommandHandler, DomainError, type EventStore } from "@hangar/eventstore";
import { type SleepingMachine, WakeRefusedError, type Waker } from "./engine/mod.js";

export interface StreamWakerOptions {
  /** The MACHINES sequence of a machine's last message as the proxy folded it (the route table's). */
  machineSeq(app: string, machineId: string): number;
  /** Default: the MACHINES stream; tests give a prefixed one. */
  stream?: AggregateStream<MachineEvent>;
}

/**
 * Wakes machines by appending `StartMachine{uncordon}` to their aggregate, as the gateway's start does;
 * the host agent then starts (or resumes) the process. The command id is the machine and the sequence
 * the proxy saw it at, so proxies that wake the same sleeping machine record one start.
 */
export class StreamWaker implements Waker {
  private readonly handler: CommandHandler<MachineState, MachineCommand, MachineEvent>;

  constructor(
    store: EventStore,
    private readonly opts: StreamWakerOptions,
  ) {
    this.handler = new CommandHandler(store, opts.stream ?? machinesStream, machineDecider);
  }

  async start(app: string, machine: SleepingMachine): Promise<void> {
    const seq = this.opts.machineSeq(app, machine.machineId);
    try {
      await this.handler.handle(
        machineAggregateId(app, machine.machineId),
        { type: "StartMachine", uncordon: true, nowMs: Date.now() },
        { commandId: `wake-${machine.machineId}-${seq}` },
      );
    } catch (err) {
      if (err instanceof DomainError) throw new WakeRefusedError(err.code, err.message, { cause: err });
      throw err;
    }
  }
}
