/** Aligns rows under headers in columns two spaces apart, with no trailing spaces; ends with a newline. */
export function formatTable(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)));
  return all
    .map((row) =>
      headers
        .map((_, i) => (row[i] ?? "").padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}

/** A short relative time ("12s ago", "5m ago", "3h ago", "2d ago"); the input when it is not a date. */
export function ago(time: string | number | undefined, now: number = Date.now()): string {
  if (time === undefined || time === "") return "";
  const at = new Date(time).getTime();
  if (Number.isNaN(at)) return String(time);
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}
