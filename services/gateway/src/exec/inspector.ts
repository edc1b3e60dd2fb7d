import { type ExistingMachine, machineAggregateId } from "@hangar/domain";
import {
  type HostExecReply,
  type HostExecRequest,
  type HostPsRequest,
  type ProcessStat,
  sendCommand,
  subjects,
} from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import { ApiError } from "../http/errors.js";
import type { Catalog } from "../machines/catalog.js";

/** How long past the command's own timeout the gateway waits for the host's answer (the kill, the reply). */
const EXEC_REPLY_GRACE_MS = 5_000;
/** How long a host gets to list a machine's processes. */
const PS_TIMEOUT_MS = 5_000;

/** What the exec and ps routes need: a command run inside a machine, and its processes. */
export interface MachineInspector {
  exec(app: string, machineId: string, command: string[], timeoutMs: number): Promise<HostExecReply>;
  ps(app: string, machineId: string): Promise<ProcessStat[]>;
}

/**
 * Exec and ps through the machine's host agent (`cmd.host.<host>.exec`, `.ps`): the catalog says
 * where a machine runs, and only a started machine of the app is asked about.
 */
export class HostInspector implements MachineInspector {
  constructor(
    private readonly nc: NatsConnection,
    private readonly catalog: Pick<Catalog, "machine">,
  ) {}

  exec(app: string, machineId: string, command: string[], timeoutMs: number): Promise<HostExecReply> {
    return sendCommand<HostExecRequest, HostExecReply>(
      this.nc,
      subjects.hostCommand(startedHostOf(this.catalog, app, machineId), "exec"),
      { app, machine_id: machineId, command, timeout_ms: timeoutMs },
      timeoutMs + EXEC_REPLY_GRACE_MS,
    );
  }

  ps(app: string, machineId: string): Promise<ProcessStat[]> {
    return sendCommand<HostPsRequest, ProcessStat[]>(
      this.nc,
      subjects.hostCommand(startedHostOf(this.catalog, app, machineId), "ps"),
      { app, machine_id: machineId },
      PS_TIMEOUT_MS,
    );
  }
}

/**
 * The host of a started machine of the app; 404 for no such machine (another app's included), else 412
 * saying who needs it started.
 */
export function startedHostOf(
  catalog: Pick<Catalog, "machine">,
  app: string,
  machineId: string,
  needs = "exec and ps need",
): string {
  return startedMachineOf(catalog, app, machineId, needs).hostId;
}

/** A started machine of the app, as the catalog sees it; refused as startedHostOf says. */
export function startedMachineOf(
  catalog: Pick<Catalog, "machine">,
  app: string,
  machineId: string,
  needs: string,
): ExistingMachine {
  const m = catalog.machine(machineAggregateId(app, machineId));
  if (!m || m.state.status === "destroyed")
    throw ApiError.of("not_found", `machine ${machineId} not found in app ${app}`);
  if (m.state.status !== "started")
    throw ApiError.of(
      "failed_precondition",
      `machine ${machineId} is ${m.state.status}: ${needs} a started machine`,
    );
  return m.state;
}
