import { ago, formatTable } from "./table.js";
import type { Machine, MachineConfig, MachineEvent, MachineService, Scaling } from "./types.js";

const RECENT_EVENTS = 10;

/** The machines table of `hangar machine list` and `hangar status`. */
export function machineTable(machines: Machine[], now: number = Date.now()): string {
  const rows = machines.map((m) => [
    m.id,
    m.name ?? "",
    m.state ?? "",
    m.region ?? "",
    m.config?.image ?? "",
    ago(m.updated_at, now),
  ]);
  return formatTable(["ID", "NAME", "STATE", "REGION", "IMAGE", "UPDATED"], rows);
}

/** `Label: value` lines, aligned, indented, skipping empty values. */
export function fields(pairs: [string, string | undefined][]): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== "");
  const width = Math.max(0, ...shown.map(([label]) => label.length + 1));
  return shown.map(([label, value]) => `  ${`${label}:`.padEnd(width)}  ${value}\n`).join("");
}

function when(time: string | undefined, now: number): string | undefined {
  return time ? `${time} (${ago(time, now)})` : undefined;
}

function describeService(s: MachineService): string {
  const ports = (s.ports ?? []).map(
    (p) => `${p.port ?? `${p.start_port}-${p.end_port}`}/${(p.handlers ?? []).join("+") || "tcp"}`,
  );
  return `${s.protocol ?? "tcp"} ${s.internal_port ?? "?"} <- ${ports.join(", ") || "no public ports"}`;
}

function describeGuest(config: MachineConfig): string | undefined {
  const g = config.guest;
  if (!g) return undefined;
  const parts = [
    g.cpus !== undefined ? [g.cpus, g.cpu_kind, g.cpus === 1 ? "cpu" : "cpus"].filter(Boolean).join(" ") : "",
    g.memory_mb !== undefined ? `${g.memory_mb} MB` : "",
  ];
  return parts.filter(Boolean).join(", ") || undefined;
}

function eventTime(e: MachineEvent): string {
  return e.timestamp === undefined ? "" : new Date(e.timestamp).toISOString();
}

/** The details of `hangar machine status`: state, config summary and the most recent events. */
export function machineDetails(m: Machine, events: MachineEvent[], now: number = Date.now()): string {
  const config = m.config ?? {};
  const env = Object.entries(config.env ?? {}).map(([k, v]) => `${k}=${v}`);
  let text = `Machine ${m.id}${m.name ? ` (${m.name})` : ""}\n`;
  text += fields([
    ["State", m.state],
    ["Region", m.region],
    ["Image", config.image],
    ["Instance", m.instance_id],
    ["Private IP", m.private_ip],
    ["Created", when(m.created_at, now)],
    ["Updated", when(m.updated_at, now)],
  ]);
  text += "\nConfig\n";
  text += fields([
    ["Guest", describeGuest(config)],
    ["Command", config.init?.cmd?.join(" ")],
    ["Env", env.join(" ")],
    ["Services", (config.services ?? []).map(describeService).join("; ")],
    ["Restart", config.restart?.policy],
  ]);
  const recent = [...events].sort((a, b) => (b.timestamp ?? 0) - (a.timestamp ?? 0)).slice(0, RECENT_EVENTS);
  text += "\nRecent events\n";
  if (recent.length === 0) return `${text}  none\n`;
  const rows = recent.map((e) => [eventTime(e), e.type ?? "", e.status ?? "", e.source ?? ""]);
  return text + formatTable(["TIME", "TYPE", "STATUS", "SOURCE"], rows);
}

/** The autoscaling part of `hangar status`: panic mode, then recent decisions with why and what. */
export function scalingSummary(s: Scaling, shown = 5, now: number = Date.now()): string {
  if (s.decisions.length === 0) return "  no decisions yet\n";
  let text = fields([["Mode", s.panic ? `panic since ${when(s.panic_since ?? undefined, now)}` : "stable"]]);
  const rows = s.decisions
    .slice(0, shown)
    .map((d) => [
      ago(d.decided_at, now),
      `${d.current} -> ${d.desired}`,
      d.actions
        .map((a) => `${a.kind} ${a.machine_id}${a.outcome === "done" ? "" : ` (${a.outcome})`}`)
        .join(", "),
      d.reason,
    ]);
  text += formatTable(["WHEN", "MACHINES", "ACTIONS", "WHY"], rows);
  return text;
}
