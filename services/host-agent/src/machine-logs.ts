import {
  type HostLogsReply,
  type HostLogsRequest,
  type MachineLogLine,
  serveCommands,
  subjects,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { LogEntry, ProcessDriver } from "./driver/mod.js";

/** The most lines one request gets per machine. */
export const MAX_RECENT_LINES = 1_000;

/** Where a machine runs, as its log lines name it. */
export interface LoggedMachine {
  app: string;
  region: string;
  machineId: string;
}

/** A kept line as it goes out: published live, and in answers to `cmd.host.<id>.logs`. */
export function toLogLine(m: LoggedMachine, entry: LogEntry): MachineLogLine {
  return {
    ts: entry.ts,
    seq: entry.seq,
    app: m.app,
    machine_id: m.machineId,
    region: m.region,
    stream: entry.stream,
    line: entry.line,
  };
}

/** A refused request, with the code the caller sees. */
class InvalidLogsRequest extends Error {
  readonly code = "invalid_argument";
}

export interface RecentLogsOptions {
  nc: NatsConnection;
  hostId: string;
  driver: Pick<ProcessDriver, "recentLogs">;
  /** The machine on this host with that id, as the MACHINES stream says; undefined when it is not here. */
  machine: (machineId: string) => LoggedMachine | undefined;
  logger: Pick<Logger, "error">;
}

/**
 * Answers `cmd.host.<host_id>.logs`: the recent lines this host keeps of the asked machines of the app.
 * A machine of another app, or not on this host, adds nothing: a caller learns only what it asked for.
 */
export function serveRecentLogs(opts: RecentLogsOptions): Subscription {
  return serveCommands<HostLogsRequest, HostLogsReply>(
    opts.nc,
    subjects.hostCommand(opts.hostId, "logs"),
    `host-${opts.hostId}`,
    async (req) => {
      const { app, machine_ids: ids, limit } = req;
      if (typeof app !== "string" || !Array.isArray(ids) || !ids.every((id) => typeof id === "string"))
        throw new InvalidLogsRequest("expected { app, machine_ids: string[], limit }");
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RECENT_LINES)
        throw new InvalidLogsRequest(`limit: expected a whole number from 1 to ${MAX_RECENT_LINES}`);
      const lines: MachineLogLine[] = [];
      for (const id of new Set(ids)) {
        const m = opts.machine(id);
        if (!m || m.app !== app) continue;
        for (const entry of await opts.driver.recentLogs(id, limit)) lines.push(toLogLine(m, entry));
      }
      return { lines };
    },
    (err) => opts.logger.error({ err }, "answering recent logs failed"),
  );
}
