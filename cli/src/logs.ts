/**
 * One line of a machine's output, as published on core NATS (no JetStream, so no history) by the host
 * agent running the machine, and read by `hangar logs`.
 *
 * - Subject: `logs.<app>.<region>.<machine_id>` (build it with `logSubject`).
 * - Payload: this object as UTF-8 JSON, one message per line of output, without its trailing newline.
 *   Lines longer than the NATS max payload should be cut by the publisher.
 */
export interface LogLine {
  /** When the host agent read the line: ISO 8601 with milliseconds in UTC, e.g. `2025-01-31T12:00:00.123Z`. */
  ts: string;
  machine_id: string;
  region: string;
  stream: "stdout" | "stderr";
  /** The text of the line, without the newline. */
  line: string;
}

const TOKEN = /^[^.*>\s]+$/;

function token(value: string, what: string): string {
  if (!TOKEN.test(value)) throw new Error(`${what} "${value}" cannot be used in a NATS subject`);
  return value;
}

/** The subject a log line is published on; leave out region or machine to get a wildcard for subscribing. */
export function logSubject(app: string, where: { region?: string; machineId?: string } = {}): string {
  const region = where.region === undefined ? "*" : token(where.region, "region");
  const machine = where.machineId === undefined ? "*" : token(where.machineId, "machine id");
  return `logs.${token(app, "app name")}.${region}.${machine}`;
}

/** Decodes a log message payload; undefined when it is not a LogLine. */
export function parseLogLine(payload: string): LogLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const v = value as Record<string, unknown>;
  const ok =
    typeof v.ts === "string" &&
    typeof v.machine_id === "string" &&
    typeof v.region === "string" &&
    (v.stream === "stdout" || v.stream === "stderr") &&
    typeof v.line === "string";
  return ok ? (v as unknown as LogLine) : undefined;
}

/** How `hangar logs` prints a line: `<time> <machine_id> <line>`. */
export function formatLogLine(log: LogLine): string {
  return `${log.ts} ${log.machine_id} ${log.line}`;
}
