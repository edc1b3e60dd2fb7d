// The invariants a fault must not break, checked over the event log itself (pure: no NATS here; the
// harness reads the streams and hands their events in). Each broken rule is one line in `violations`.
import type { HostEvent, MachineEvent, ScalingEvent } from "@hangar/domain";

/** One event as read from its stream: the aggregate it belongs to, its message and the command behind it. */
export interface LoggedEvent<E> {
  aggregateId: string;
  /** Stream sequence of the message holding it (one command's events share a message). */
  seq: number;
  /** The command id that appended it (the event store's causation id). */
  causationId: string;
  event: E;
}

/** The three streams the checks read, each in stream order. */
export interface EventLog {
  machines: LoggedEvent<MachineEvent>[];
  hosts: LoggedEvent<HostEvent>[];
  scaling: LoggedEvent<ScalingEvent>[];
}

export interface InvariantOptions {
  /** Machine ids the API acknowledged (answered 200 for): each must have been created. */
  acknowledged?: Iterable<string>;
}

export interface InvariantReport {
  /** Every broken rule, in words; empty when the log keeps every invariant. */
  violations: string[];
  /** Machines created (MachineCreated events). */
  machinesCreated: number;
  /** Scaling decisions recorded, and actions finished. */
  decisions: number;
  actionsFinished: number;
  /** Per host: the most memory (MiB) and CPUs reserved at any point of the HOSTS log, and its smallest capacity. */
  hostPeaks: Record<
    string,
    { memoryMb: number; cpus: number; capacityMemoryMb: number; capacityCpus: number }
  >;
}

interface HostFold {
  cpus: number;
  memoryMb: number;
  usedCpus: number;
  usedMemoryMb: number;
  reservations: Map<string, { cpus: number; memoryMb: number }>;
}

/**
 * Checks, over the whole log:
 * - no lost or doubled machine: each machine id created once (in one app), every acknowledged id created;
 * - no command carried out twice: a command id appended at most one message per aggregate, in
 *   MACHINES, HOSTS and SCALING (the scheduler's steps have ids of their own, `scale-<decision>-<verb>-<id>`,
 *   so a step run by two schedulers shows here);
 * - no host over capacity at any point of the HOSTS log (its reservations added as the host's fold
 *   adds them), no machine reserved on two hosts at once nor twice on one;
 * - every event has the command id that appended it (an empty one is reported, not skipped);
 * - no scaling decision recorded twice, none naming a machine already in an unfinished action of its
 *   app (two schedulers deciding on the same load), no action finished twice, no finish of an action
 *   never decided, no create finished "done" without its MachineCreated.
 */
export function checkInvariants(log: EventLog, opts: InvariantOptions = {}): InvariantReport {
  const violations: string[] = [];
  const created = new Map<string, string>();
  for (const e of log.machines) {
    if (e.event.type !== "MachineCreated") continue;
    const id = e.event.data.machineId ?? "";
    const before = created.get(id);
    if (before !== undefined)
      violations.push(
        `machine ${id} created twice (in ${before} and again in ${e.aggregateId} at seq ${e.seq})`,
      );
    else created.set(id, e.aggregateId);
  }
  for (const id of opts.acknowledged ?? [])
    if (!created.has(id)) violations.push(`machine ${id} was acknowledged but never created (lost)`);
  violations.push(
    ...commandsOnce("MACHINES", log.machines),
    ...commandsOnce("HOSTS", log.hosts),
    ...commandsOnce("SCALING", log.scaling),
  );

  const hosts = new Map<string, HostFold>();
  const reservedOn = new Map<string, string>();
  const hostPeaks: InvariantReport["hostPeaks"] = {};
  for (const e of log.hosts) {
    const hostId = e.aggregateId;
    const ev = e.event;
    let h = hosts.get(hostId);
    switch (ev.type) {
      case "HostRegistered": {
        const cpus = ev.data.cpus ?? 0;
        const memoryMb = ev.data.memoryMb ?? 0;
        h ??= { cpus, memoryMb, usedCpus: 0, usedMemoryMb: 0, reservations: new Map() };
        h.cpus = cpus;
        h.memoryMb = memoryMb;
        hosts.set(hostId, h);
        break;
      }
      case "HostMachineReserved": {
        if (!h) {
          violations.push(`host ${hostId}: machine reserved before the host registered (seq ${e.seq})`);
          break;
        }
        const machineId = ev.data.machineId ?? "";
        const other = reservedOn.get(machineId);
        if (other !== undefined && other !== hostId)
          violations.push(
            `machine ${machineId} reserved on ${hostId} while it holds room on ${other} (seq ${e.seq})`,
          );
        // Reserved again on the same host: the host's fold (libs/domain hosts) adds the room again, so
        // the host counts it twice from here on; the check adds as the domain does.
        if (h.reservations.has(machineId))
          violations.push(`machine ${machineId} reserved twice on ${hostId} (seq ${e.seq})`);
        const r = { cpus: ev.data.cpus ?? 0, memoryMb: ev.data.memoryMb ?? 0 };
        h.reservations.set(machineId, r);
        reservedOn.set(machineId, hostId);
        h.usedCpus += r.cpus;
        h.usedMemoryMb += r.memoryMb;
        if (h.usedCpus > h.cpus || h.usedMemoryMb > h.memoryMb)
          violations.push(
            `host ${hostId} over capacity at seq ${e.seq}: ${h.usedCpus}/${h.cpus} CPUs, ${h.usedMemoryMb}/${h.memoryMb} MiB`,
          );
        break;
      }
      case "HostMachineReleased": {
        const machineId = ev.data.machineId ?? "";
        const r = h?.reservations.get(machineId);
        if (h && r) {
          h.reservations.delete(machineId);
          h.usedCpus -= r.cpus;
          h.usedMemoryMb -= r.memoryMb;
        }
        if (reservedOn.get(machineId) === hostId) reservedOn.delete(machineId);
        break;
      }
      default:
        break;
    }
    if (h) {
      const peak = hostPeaks[hostId];
      hostPeaks[hostId] = {
        memoryMb: Math.max(peak?.memoryMb ?? 0, h.usedMemoryMb),
        cpus: Math.max(peak?.cpus ?? 0, h.usedCpus),
        capacityMemoryMb: Math.min(peak?.capacityMemoryMb ?? h.memoryMb, h.memoryMb),
        capacityCpus: Math.min(peak?.capacityCpus ?? h.cpus, h.cpus),
      };
    }
  }

  // Per decision id, each action's machine and kind.
  const decided = new Map<string, Map<string, string>>();
  // Per app, the machines in an unfinished action and the decision that holds each.
  const unfinished = new Map<string, Map<string, string>>();
  const finished = new Set<string>();
  let decisions = 0;
  for (const e of log.scaling) {
    const ev = e.event;
    const app = e.aggregateId;
    if (ev.type === "ScaleDecided") {
      const id = ev.data.decisionId ?? "";
      if (decided.has(id)) violations.push(`scaling decision ${id} recorded twice (seq ${e.seq})`);
      const actions = ev.data.actions ?? [];
      decided.set(id, new Map(actions.map((a) => [a.machineId ?? "", a.kind ?? ""])));
      // Two schedulers deciding on the same load name the same machines under different decision ids.
      let busy = unfinished.get(app);
      if (!busy) {
        busy = new Map();
        unfinished.set(app, busy);
      }
      for (const a of actions) {
        const machineId = a.machineId ?? "";
        const holder = busy.get(machineId);
        if (holder !== undefined)
          violations.push(
            `scaling decision ${id} names machine ${machineId} of ${app}, already in unfinished decision ${holder} (seq ${e.seq})`,
          );
        busy.set(machineId, id);
      }
      decisions++;
    } else if (ev.type === "ScaleActionFinished") {
      const decisionId = ev.data.decisionId ?? "";
      const machineId = ev.data.machineId ?? "";
      const key = `${decisionId}/${machineId}`;
      const kind = decided.get(decisionId)?.get(machineId);
      if (kind === undefined)
        violations.push(`scale action ${key} finished but never decided (seq ${e.seq})`);
      if (finished.has(key)) violations.push(`scale action ${key} finished twice (seq ${e.seq})`);
      if (kind === "create" && (ev.data.outcome ?? "done") === "done" && !created.has(machineId))
        violations.push(`scale action ${key} finished done but machine ${machineId} was never created`);
      finished.add(key);
      const busy = unfinished.get(app);
      if (busy?.get(machineId) === decisionId) busy.delete(machineId);
    }
  }
  return {
    violations,
    machinesCreated: created.size,
    decisions,
    actionsFinished: finished.size,
    hostPeaks,
  };
}

/** A command id that appended more than one message to one aggregate: it was carried out twice. */
function commandsOnce(stream: string, events: LoggedEvent<{ type: string }>[]): string[] {
  const seen = new Map<string, number>();
  const out: string[] = [];
  for (const e of events) {
    if (!e.causationId) {
      // Every append carries its command's id; one without escaped the check above.
      out.push(`${stream}: event ${e.event.type} of ${e.aggregateId} at seq ${e.seq} has no command id`);
      continue;
    }
    const key = `${e.aggregateId} ${e.causationId}`;
    const seq = seen.get(key);
    if (seq === undefined) seen.set(key, e.seq);
    else if (seq !== e.seq)
      out.push(
        `${stream}: command ${e.causationId} appended twice to ${e.aggregateId} (seq ${seq} and ${e.seq})`,
      );
  }
  return out;
}
