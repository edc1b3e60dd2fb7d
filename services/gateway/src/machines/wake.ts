import {
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { type AggregateStream, CommandHandler, DomainError, type EventStore } from "@hangar/eventstore";
import { serveCommands, subjects, type WakeRequest } from "@hangar/service";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";

export interface WakeServiceOptions {
  /** Default: the MACHINES stream; tests give a prefixed one. */
  stream?: AggregateStream<MachineEvent>;
  /** Default: `cmd.machines.wake`. */
  subject?: string;
  onInternalError?: (err: unknown) => void;
}

/** The command id of a wake: one per machine and MACHINES sequence the proxy saw it at. */
export function wakeCommandId(req: WakeRequest): string {
  return `wake-${req.machine_id}-${req.machines_seq}`;
}

/**
 * Serves the proxies' wakes (`cmd.machines.wake`, queue group `gateway`): `StartMachine{uncordon}` on
 * the machine's aggregate, as the API's start does. The gateway owns the machine commands, so the
 * proxy needs no right to append to MACHINES. A refusal answers with the decider's code.
 */
export function serveWakes(
  nc: NatsConnection,
  store: EventStore,
  opts: WakeServiceOptions = {},
): Subscription {
  const handler = new CommandHandler<MachineState, MachineCommand, MachineEvent>(
    store,
    opts.stream ?? machinesStream,
    machineDecider,
  );
  return serveCommands<WakeRequest, Record<string, never>>(
    nc,
    opts.subject ?? subjects.wake,
    "gateway",
    async (req) => {
      checkWakeRequest(req);
      await handler.handle(
        machineAggregateId(req.app, req.machine_id),
        { type: "StartMachine", uncordon: true, nowMs: Date.now() },
        { commandId: wakeCommandId(req) },
      );
      return {};
    },
    opts.onInternalError,
  );
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

// The request comes off the bus as plain JSON: an app or machine id that is not one subject token
// would name another aggregate.
function checkWakeRequest(req: WakeRequest): void {
  if (
    typeof req?.app !== "string" ||
    !TOKEN.test(req.app) ||
    typeof req.machine_id !== "string" ||
    !TOKEN.test(req.machine_id) ||
    !Number.isSafeInteger(req.machines_seq) ||
    req.machines_seq < 0
  ) {
    throw new DomainError("a wake names an app, a machine id and a MACHINES sequence", "invalid_argument");
  }
}
