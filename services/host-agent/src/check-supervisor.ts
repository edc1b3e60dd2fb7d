import { type Span, SpanStatusCode, tracer } from "@hangar/telemetry";
import { type CheckChangeListener, type ChecksHandle, runChecks } from "./driver/mod.js";
import { parseMachineConfig } from "./run-spec.js";

/** The machine whose checks run: its id and its config (the checks and the internal port). */
export interface CheckedMachine {
  machineId: string;
  configJson: string;
}

/** Where the running machine answers. */
export interface CheckedProcess {
  privateIp: string;
  port: number;
}

/**
 * Runs the checks of the machines started on this host, one set per machine: started when the agent
 * records a start (or finds a machine started), stopped before it stops, suspends or destroys it.
 *
 * Each check gets a span, child of the active context when its checks start (the agent's machine
 * start), from then until its first `passing` result: how long the machine took to be judged healthy.
 * Later results are not traced, so a machine that runs for weeks does not grow one trace forever.
 */
export class CheckSupervisor {
  readonly #running = new Map<string, ChecksHandle>();
  /** Per machine, the spans of its checks that have not passed yet. */
  readonly #untilPassing = new Map<string, Map<string, Span>>();

  /** Starts the machine's checks unless they run already; a machine without checks gets none. */
  ensure(machine: CheckedMachine, proc: CheckedProcess, onChange: CheckChangeListener): void {
    if (this.#running.has(machine.machineId)) return;
    const cfg = parseMachineConfig(machine.configJson);
    if (Object.keys(cfg.checks).length === 0) return;
    const spans = new Map<string, Span>();
    for (const name of Object.keys(cfg.checks)) {
      spans.set(
        name,
        tracer().startSpan(`check ${name}`, {
          attributes: { "hangar.machine_id": machine.machineId, "hangar.check": name },
        }),
      );
    }
    this.#untilPassing.set(machine.machineId, spans);
    const handle = runChecks(
      cfg.checks,
      { ip: proc.privateIp, port: proc.port },
      (name, status, output) => {
        const span = spans.get(name);
        if (span) {
          span.addEvent(status);
          if (status === "passing") {
            span.end();
            spans.delete(name);
          }
        }
        onChange(name, status, output);
      },
      // A check on the app's internal port (or on none) reaches the port the machine really got.
      (port) => (port === cfg.internalPort || port === undefined ? proc.port : port),
    );
    this.#running.set(machine.machineId, handle);
  }

  /** Whether the machine's checks run. */
  has(machineId: string): boolean {
    return this.#running.has(machineId);
  }

  /** Stops the machine's checks, if they run. */
  stop(machineId: string): void {
    this.#running.get(machineId)?.stop();
    this.#running.delete(machineId);
    for (const span of this.#untilPassing.get(machineId)?.values() ?? []) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: "stopped before the check passed" });
      span.end();
    }
    this.#untilPassing.delete(machineId);
  }

  /** Stops every machine's checks (the agent stops). */
  stopAll(): void {
    for (const id of [...this.#running.keys()]) this.stop(id);
  }
}
