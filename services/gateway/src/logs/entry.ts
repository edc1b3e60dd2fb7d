import type { MachineLogLine } from "@hangar/service";

/**
 * One log entry in Fly's shape (what `flyctl logs --json` prints): the machine is the `instance`.
 * Hangar adds the stream and the line's number in `meta`.
 */
export interface LogEntry {
  timestamp: string;
  message: string;
  /** "info" for stdout, "error" for stderr. */
  level: "info" | "error";
  instance: string;
  region: string;
  meta: {
    instance: string;
    region: string;
    event: { provider: "app" };
    stream: "stdout" | "stderr";
    seq: number;
  };
}

/** A machine's line as the API sends it. */
export function toLogEntry(line: MachineLogLine): LogEntry {
  return {
    timestamp: line.ts,
    message: line.line,
    level: line.stream === "stderr" ? "error" : "info",
    instance: line.machine_id,
    region: line.region,
    meta: {
      instance: line.machine_id,
      region: line.region,
      event: { provider: "app" },
      stream: line.stream,
      seq: line.seq,
    },
  };
}

/** Whether a payload off the bus is a MachineLogLine (anything else published there is skipped). */
export function isMachineLogLine(value: unknown): value is MachineLogLine {
  if (value === null || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.ts === "string" &&
    typeof v.seq === "number" &&
    typeof v.machine_id === "string" &&
    typeof v.region === "string" &&
    (v.stream === "stdout" || v.stream === "stderr") &&
    typeof v.line === "string"
  );
}
