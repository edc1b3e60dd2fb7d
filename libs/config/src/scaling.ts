import { type MachinePort, type MachineService, MachineServiceSchema } from "./services.js";

/** Fly's default soft limit: one machine per 20 concurrent connections. */
export const DEFAULT_SOFT_LIMIT = 20;
/** Most machines the autoscaler runs for a service when the config does not say. */
export const DEFAULT_MAX_MACHINES_RUNNING = 20;

/** What a machine becomes when the autoscaler no longer needs it. */
export type AutoStop = "off" | "stop" | "suspend";

/** How the proxy counts a machine's load and how the autoscaler sizes the app, from one service. */
export interface ScalingSettings {
  /** What counts as load: connections (the default) or requests. Both count what is in flight. */
  type: "connections" | "requests";
  softLimit: number;
  /** Most in flight on one machine; undefined: no limit. */
  hardLimit: number | undefined;
  /** Whether a request may start a stopped or suspended machine (and the autoscaler start or create). */
  autostart: boolean;
  autostop: AutoStop;
  minMachinesRunning: number;
  maxMachinesRunning: number;
}

/** Fly's settings for a service that says nothing: soft_limit 20, no hard limit, autostart on, autostop off. */
export const DEFAULT_SCALING: Readonly<ScalingSettings> = Object.freeze({
  type: "connections",
  softLimit: DEFAULT_SOFT_LIMIT,
  hardLimit: undefined,
  autostart: true,
  autostop: "off",
  minMachinesRunning: 0,
  maxMachinesRunning: DEFAULT_MAX_MACHINES_RUNNING,
});

/**
 * The scaling settings of a machine config (its JSON or parsed form): those of its first service with
 * an http handler, else its first service. Undefined when the machine has no service (nothing to route).
 * Fly's defaults: soft_limit 20, autostart on, autostop off, min_machines_running 0.
 */
export function scalingSettings(config: unknown): ScalingSettings | undefined {
  const svc = routedService(config);
  if (!svc) return undefined;
  const d = DEFAULT_SCALING;
  const soft = svc.concurrency?.soft_limit ?? d.softLimit;
  const hard = svc.concurrency?.hard_limit ?? d.hardLimit;
  const min = svc.min_machines_running ?? d.minMachinesRunning;
  return {
    type: svc.concurrency?.type ?? d.type,
    // A hard limit below the soft one would make "over soft_limit" unreachable; Fly clamps the same way.
    softLimit: hard !== undefined ? Math.min(soft, hard) : soft,
    hardLimit: hard,
    autostart: svc.autostart ?? d.autostart,
    autostop: svc.autostop === undefined || svc.autostop === null ? d.autostop : autostopOf(svc.autostop),
    minMachinesRunning: min,
    maxMachinesRunning: Math.max(min, svc.max_machines_running ?? d.maxMachinesRunning),
  };
}

/**
 * The service of a machine config (its JSON or parsed form) the proxy routes to: its first valid
 * service with an http handler, else its first valid one; undefined when it has none.
 */
export function routedService(config: unknown): MachineService | undefined {
  const obj = typeof config === "string" ? safeJson(config) : config;
  if (typeof obj !== "object" || obj === null) return undefined;
  const raw = (obj as { services?: unknown }).services;
  if (!Array.isArray(raw)) return undefined;
  const services: MachineService[] = [];
  for (const s of raw) {
    const parsed = MachineServiceSchema.safeParse(s);
    if (parsed.success) services.push(parsed.data);
  }
  return services.find((s) => s.ports?.some((p) => p.handlers?.includes("http"))) ?? services[0];
}

/**
 * The port of the routed service (routedService) whose http_options the proxy follows: its first
 * with an http handler, else its first.
 */
export function routedPort(config: unknown): MachinePort | undefined {
  const ports = routedService(config)?.ports;
  return ports?.find((p) => p.handlers?.includes("http")) ?? ports?.[0];
}

function autostopOf(v: NonNullable<MachineService["autostop"]>): AutoStop {
  if (v === true) return "stop";
  if (v === false) return "off";
  return v;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
