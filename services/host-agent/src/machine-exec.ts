import type { DomainErrorCode } from "@hangar/eventstore";
import {
  type HostExecReply,
  type HostExecRequest,
  type HostPsRequest,
  type ProcessStat,
  serveCommands,
  subjects,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { InvalidMachineSpecError, MachineNotRunningError } from "./driver/mod.js";

/** The longest exec a host runs, whatever it is asked: the gateway's maximum (60 s), with room to spare. */
export const MAX_EXEC_TIMEOUT_MS = 120_000;
/** What an exec's stdout and stderr may add up to in a reply, before its JSON encoding. */
export const MAX_EXEC_OUTPUT_BYTES = 1024 * 1024;
/** Room in a reply for everything but the output (the JSON keys, the exit status). */
const REPLY_OVERHEAD_BYTES = 1024;

/** What the handlers need from the driver: `exec` runs a command inside a machine's sandbox. */
export interface InspectableDriver {
  exec(
    machineId: string,
    req: { command: string[]; timeoutMs: number },
  ): Promise<{ stdout: string; stderr: string; exitCode: number; exitSignal?: number }>;
  ps(machineId: string): Promise<ProcessStat[]>;
}

/** A refused exec or ps, with the code the caller (the gateway) maps to HTTP. */
class InspectRefused extends Error {
  constructor(
    message: string,
    readonly code: DomainErrorCode,
  ) {
    super(message);
  }
}

export interface MachineInspectionOptions {
  nc: NatsConnection;
  hostId: string;
  driver: InspectableDriver;
  /** The app of a machine on this host, as the MACHINES stream says; undefined when it is not here. */
  appOf: (machineId: string) => string | undefined;
  logger: Pick<Logger, "error">;
}

/**
 * Answers `cmd.host.<host_id>.exec` (runs a command inside one of this host's machines) and
 * `cmd.host.<host_id>.ps` (its processes). A machine of another app, or not on this host, is
 * `not_found`, as the gateway says it; one that does not run is `failed_precondition`.
 */
export function serveMachineInspection(opts: MachineInspectionOptions): Subscription[] {
  const { nc, hostId, driver, logger } = opts;
  const machineOf = (req: { app?: unknown; machine_id?: unknown }): string => {
    if (typeof req.app !== "string" || typeof req.machine_id !== "string")
      throw new InspectRefused("expected { app, machine_id, ... }", "invalid_argument");
    if (opts.appOf(req.machine_id) !== req.app)
      throw new InspectRefused(`machine ${req.machine_id} not found in app ${req.app}`, "not_found");
    return req.machine_id;
  };
  const onError = (what: string) => (err: unknown) => logger.error({ err }, `answering ${what} failed`);
  return [
    serveCommands<HostExecRequest, HostExecReply>(
      nc,
      subjects.hostCommand(hostId, "exec"),
      `host-${hostId}`,
      async (req) => {
        const machineId = machineOf(req);
        const { command, timeout_ms: timeoutMs } = req;
        if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === "string"))
          throw new InspectRefused("command: expected a non-empty list of strings", "invalid_argument");
        if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_EXEC_TIMEOUT_MS)
          throw new InspectRefused(
            `timeout_ms: expected a whole number from 1 to ${MAX_EXEC_TIMEOUT_MS}`,
            "invalid_argument",
          );
        const result = await driverRefusals(machineId, () => driver.exec(machineId, { command, timeoutMs }));
        return boundedReply(
          {
            stdout: result.stdout,
            stderr: result.stderr,
            exit_code: result.exitCode,
            exit_signal: result.exitSignal ?? 0,
          },
          Math.min(MAX_EXEC_OUTPUT_BYTES, nc.info?.max_payload ?? MAX_EXEC_OUTPUT_BYTES) -
            REPLY_OVERHEAD_BYTES,
        );
      },
      onError("exec"),
    ),
    serveCommands<HostPsRequest, ProcessStat[]>(
      nc,
      subjects.hostCommand(hostId, "ps"),
      `host-${hostId}`,
      async (req) => {
        const machineId = machineOf(req);
        return driverRefusals(machineId, () => driver.ps(machineId));
      },
      onError("ps"),
    ),
  ];
}

/**
 * Runs `fn`, refusing with `failed_precondition` when the driver says the machine does not run (or is
 * suspended), and with `invalid_argument` when it refuses the command.
 */
async function driverRefusals<T>(machineId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MachineNotRunningError)
      throw new InspectRefused(`machine ${machineId} is not running on its host`, "failed_precondition");
    if (err instanceof InvalidMachineSpecError) throw new InspectRefused(err.message, "invalid_argument");
    throw err;
  }
}

/**
 * The reply with stdout and stderr cut so that, JSON-encoded, it fits in `maxBytes` (a NATS message
 * may not exceed the server's max_payload, 1 MiB by default). Each stream gets half of the room and
 * whatever the other leaves; a cut stream ends with a line saying how much was left out. Output
 * that JSON escapes heavily (control bytes) gets less room until the encoding fits.
 */
export function boundedReply(reply: HostExecReply, maxBytes: number): HostExecReply {
  const encoder = new TextEncoder();
  const out = encoder.encode(reply.stdout);
  const err = encoder.encode(reply.stderr);
  for (let room = maxBytes; ; room = Math.floor(room / 2)) {
    const outRoom = Math.max(room - err.length, Math.floor(room / 2));
    const cut = {
      ...reply,
      stdout: truncated(out, Math.min(out.length, outRoom)),
      stderr: truncated(err, Math.max(0, room - Math.min(out.length, outRoom))),
    };
    if (encoder.encode(JSON.stringify(cut)).length <= maxBytes || room === 0) return cut;
  }
}

/**
 * The first `room` bytes of `bytes` as text (never half a character), with a marker when some were left
 * out: "at least", since the driver may already have dropped what came past its own bound.
 */
function truncated(bytes: Uint8Array, room: number): string {
  if (bytes.length <= room) return new TextDecoder().decode(bytes);
  let end = room;
  // Back up to the start of a UTF-8 character: continuation bytes are 10xxxxxx.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  const left = bytes.length - end;
  return `${new TextDecoder().decode(bytes.subarray(0, end))}\n[hangar: output truncated, at least ${left} more bytes]\n`;
}
