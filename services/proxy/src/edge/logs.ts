import type { EdgeLogLevel } from "@hangar/edge";
import { EDGE_LOG_INSTANCE_PREFIX, type MachineLogLine, subjects } from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";

/** The longest console line sent; the rest is cut (a log line, not a channel for bulk data). */
const LINE_MAX_CHARS = 8 * 1024;

/**
 * Edge apps' console output as log lines `hangar logs` shows: published live on
 * `logs.<app>.<region>.edge-<proxy>` in the machines' line shape, the proxy as the instance,
 * warn and error as stderr. Lines are numbered per proxy process.
 */
export class EdgeLogs {
  private seq = 0;
  readonly instance: string;

  constructor(
    private readonly nc: NatsConnection,
    proxyId: string,
    private readonly region: string,
  ) {
    // A subject token: no dots, spaces or wildcards from a host name.
    this.instance = `${EDGE_LOG_INSTANCE_PREFIX}${proxyId.replace(/[^A-Za-z0-9_-]/g, "-")}`;
  }

  publish(app: string, level: EdgeLogLevel, message: string): void {
    const line: MachineLogLine = {
      ts: new Date().toISOString(),
      seq: ++this.seq,
      app,
      machine_id: this.instance,
      region: this.region,
      stream: level === "warn" || level === "error" ? "stderr" : "stdout",
      line: message.length > LINE_MAX_CHARS ? message.slice(0, LINE_MAX_CHARS) : message,
    };
    this.nc.publish(subjects.logs(app, this.region, this.instance), JSON.stringify(line));
  }
}
