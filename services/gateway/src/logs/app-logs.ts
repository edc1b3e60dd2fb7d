import {
  EDGE_LOG_INSTANCE_PREFIX,
  type HostLogsReply,
  type HostLogsRequest,
  type MachineLogLine,
  sendCommand,
  subjects,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { isMachineLogLine } from "./entry.js";

/** Which lines of an app: those of one machine, or of one region, or all. */
export interface LogFilter {
  machineId?: string;
  region?: string;
}

/** How much to read: the recent lines (at most `limit` per machine), then the new ones unless `follow` is false. */
export interface LogRead {
  limit: number;
  follow: boolean;
  /** Ends the read (the client went away). */
  signal: AbortSignal;
}

/** Where an app's machines run. */
export interface LoggedMachine {
  machineId: string;
  hostId: string;
  region: string;
}

/** What the logs route reads: whether the app (and a machine of it) exists, and the app's lines. */
export interface LogsReader {
  appExists(app: string): boolean;
  machineExists(app: string, machineId: string): boolean;
  logs(app: string, filter: LogFilter, read: LogRead): AsyncIterable<MachineLogLine>;
}

export interface AppLogsOptions {
  nc: NatsConnection;
  /** The app's machines (any state: a stopped machine's host still keeps its lines). */
  machinesOf(app: string): LoggedMachine[];
  appExists(app: string): boolean;
  logger: Pick<Logger, "warn">;
  /** How long a host gets to answer with its recent lines; default 2000 ms. */
  hostTimeoutMs?: number;
}

/**
 * An app's log lines: the recent ones its hosts keep (asked on `cmd.host.<id>.logs`), in time order,
 * then the live ones on `logs.<app>.<region>.<machine_id>`. The subscription is made before the hosts
 * are asked, so no line printed meanwhile is lost; a line that is both kept and live is sent once
 * (by its number). A host that does not answer costs its recent lines, not the read.
 */
export class AppLogs implements LogsReader {
  constructor(private readonly opts: AppLogsOptions) {}

  appExists(app: string): boolean {
    return this.opts.appExists(app);
  }

  machineExists(app: string, machineId: string): boolean {
    return this.#machineOf(app, machineId);
  }

  #machineOf(app: string, machineId: string): boolean {
    return this.opts.machinesOf(app).some((m) => m.machineId === machineId);
  }

  async *logs(app: string, filter: LogFilter, read: LogRead): AsyncGenerator<MachineLogLine> {
    const { nc } = this.opts;
    let sub: Subscription | undefined;
    const end = () => sub?.unsubscribe();
    read.signal.addEventListener("abort", end);
    try {
      if (read.follow) {
        sub = nc.subscribe(subjects.logsOf(app, filter));
        // The server has the subscription once the flush returns: lines printed from now on reach us.
        await nc.flush();
      }
      const newest = new Map<string, number>();
      for (const line of await this.#recent(app, filter, read.limit)) {
        newest.set(line.machine_id, Math.max(newest.get(line.machine_id) ?? 0, line.seq));
        yield line;
      }
      if (!sub || read.signal.aborted) return;
      for await (const msg of sub) {
        let line: unknown;
        try {
          line = msg.json();
        } catch {
          continue;
        }
        if (!isMachineLogLine(line) || line.seq <= (newest.get(line.machine_id) ?? 0)) continue;
        // Any host agent may publish on logs.*.*.*: only a line of one of this app's machines, sent
        // on that machine's own subject, is the app's (an app named like a subject prefix reads no other).
        if (msg.subject !== subjects.logs(app, line.region, line.machine_id)) continue;
        // An edge app's console lines come from the proxies that ran its code (edge-<proxy id>).
        if (!line.machine_id.startsWith(EDGE_LOG_INSTANCE_PREFIX) && !this.#machineOf(app, line.machine_id))
          continue;
        newest.set(line.machine_id, line.seq);
        yield line;
      }
    } finally {
      read.signal.removeEventListener("abort", end);
      end();
    }
  }

  /** The recent lines of the app's machines that match, from every host they are on, oldest first. */
  async #recent(app: string, filter: LogFilter, limit: number): Promise<MachineLogLine[]> {
    const byHost = new Map<string, string[]>();
    for (const m of this.opts.machinesOf(app)) {
      if (m.hostId === "") continue;
      if (filter.machineId !== undefined && m.machineId !== filter.machineId) continue;
      if (filter.region !== undefined && m.region !== filter.region) continue;
      byHost.set(m.hostId, [...(byHost.get(m.hostId) ?? []), m.machineId]);
    }
    const answers = await Promise.all(
      [...byHost].map(([hostId, ids]) =>
        sendCommand<HostLogsRequest, HostLogsReply>(
          this.opts.nc,
          subjects.hostCommand(hostId, "logs"),
          { app, machine_ids: ids, limit },
          this.opts.hostTimeoutMs ?? 2_000,
        ).catch((err: unknown) => {
          // Whatever went wrong with one host (no answer, a refusal, a reply that is not one), the
          // read goes on with the others': the 200 has already gone out.
          this.opts.logger.warn(
            { err, app, host_id: hostId },
            "a host did not answer with its recent log lines",
          );
          return { lines: [] };
        }),
      ),
    );
    const lines = answers.flatMap((a) => (Array.isArray(a?.lines) ? a.lines : [])).filter(isMachineLogLine);
    // Each host's clock stamps its own lines: across hosts, time order is as good as their clocks.
    return lines.sort((a, b) => a.ts.localeCompare(b.ts) || a.seq - b.seq);
  }
}
