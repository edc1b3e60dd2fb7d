/**
 * One log entry as the gateway's `GET /v1/apps/{app}/logs` sends it, in Fly's shape (what
 * `flyctl logs --json` prints): one line a machine (`instance`) printed.
 */
export interface LogEntry {
  /** When the host read the line: ISO 8601 with milliseconds in UTC. */
  timestamp: string;
  /** The text of the line, without its newline. */
  message: string;
  /** "info" for stdout, "error" for stderr. */
  level: string;
  instance: string;
  region: string;
  meta?: { stream?: "stdout" | "stderr"; seq?: number; [key: string]: unknown };
}

/** How `hangar logs` prints an entry, as flyctl does: `<time> app[<machine>] <region> [<level>] <line>`. */
export function formatLogEntry(entry: LogEntry): string {
  return `${entry.timestamp} app[${entry.instance}] ${entry.region} [${entry.level}] ${entry.message}`;
}
