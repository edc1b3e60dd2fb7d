import { setTimeout as sleep } from "node:timers/promises";
import { type AppConfig, machineConfigFromApp, processGroups } from "@hangar/config";
import { type ApiClient, ApiError } from "./api.js";
import { formatDuration } from "./build-log.js";
import type { Machine, MachineConfig, MachineEvent } from "./types.js";

/** The part of the API a deploy drives. */
export type DeployApi = Pick<
  ApiClient,
  "listMachines" | "createMachine" | "getMachine" | "destroyMachine" | "updateRelease"
>;

/** What the immediate strategy starts from: how many machines per group, and which ones it replaces. */
export interface ReplacementPlan {
  groups: { group: string; count: number }[];
  /** Machines of earlier deploys, destroyed once the new ones are healthy. */
  previous: Machine[];
  /** Machines no deploy created (`hangar machine run`): a deploy leaves them alone, as Fly's does. */
  unmanaged: Machine[];
}

const GONE = new Set(["destroying", "destroyed"]);

function groupOf(m: Machine): string | undefined {
  return m.config?.metadata?.fly_process_group;
}

/** As many new machines per process group as the app has now (at least one), replacing those. */
export function planReplacement(machines: Machine[], config: AppConfig): ReplacementPlan {
  const live = machines.filter((m) => !GONE.has(m.state ?? ""));
  const previous = live.filter((m) => groupOf(m) !== undefined);
  return {
    groups: processGroups(config).map((group) => ({
      group,
      count: Math.max(1, previous.filter((m) => groupOf(m) === group).length),
    })),
    previous,
    unmanaged: live.filter((m) => groupOf(m) === undefined),
  };
}

/** How many checks a machine of this config reports: its named checks and those of its services. */
export function expectedChecks(config: ReturnType<typeof machineConfigFromApp>): number {
  const services = (config.services ?? []).reduce((n, s) => n + (s.checks?.length ?? 0), 0);
  return Object.keys(config.checks ?? {}).length + services;
}

export interface DeployOptions {
  api: DeployApi;
  app: string;
  config: AppConfig;
  image: string;
  release: number;
  /** How long new machines have to start and pass every check (with "rolling", each one). */
  waitTimeoutMs: number;
  progress: (text: string) => void;
  pollMs?: number;
  /**
   * "immediate" (the default): every new machine healthy before any previous one goes. "rolling":
   * one machine at a time, each new one healthy before one previous machine goes and the next starts
   * (what `hangar secrets set` rolls with, so the app keeps all but one of its machines serving).
   */
  strategy?: "immediate" | "rolling";
}

export type DeployResult =
  | { ok: true; machines: Machine[]; destroyed: string[]; unmanaged: Machine[] }
  | { ok: false; reason: string };

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Why a machine is not healthy yet, or undefined once it is started with every check passing. */
function unhealthy(m: Machine, checks: number): string | undefined {
  if (m.state !== "started") return `machine ${m.id} is ${m.state ?? "in an unknown state"}`;
  const failing = (m.checks ?? []).find((c) => c.status !== "passing");
  if (failing) {
    const output = failing.output ? `: ${failing.output.trim().slice(0, 200)}` : "";
    return `check ${failing.name} of machine ${m.id} is ${failing.status}${output}`;
  }
  const reported = m.checks?.length ?? 0;
  if (reported < checks) return `machine ${m.id} has reported ${reported} of its ${checks} checks`;
  return undefined;
}

interface Waiting {
  api: DeployApi;
  app: string;
  id: string;
  checks: number;
  deadline: number;
  pollMs: number;
  /** Set by the first machine to fail, so the others stop waiting. */
  abort: { failed: boolean };
}

/** Why a failed machine did not start (its last failed launch's error, e.g. an image that cannot be pulled), as ": <why>". */
function failureOf(m: Machine): string {
  const launch = (m.events ?? [])
    .filter((e) => e.type === "launch" && e.status === "failed")
    .reduce<MachineEvent | undefined>(
      (a, e) => (a && (a.timestamp ?? 0) >= (e.timestamp ?? 0) ? a : e),
      undefined,
    );
  const error = (launch?.request as { error?: unknown } | undefined)?.error;
  return typeof error === "string" && error !== "" ? `: ${error}` : "";
}

/** Another machine failed first, so this one was not waited for to the end. */
const ABORTED = Symbol("aborted");

/** Waits until the machine is started and passes its checks; resolves to why not, if it does not in time. */
async function waitHealthy(w: Waiting): Promise<string | undefined | typeof ABORTED> {
  for (;;) {
    const m = await w.api.getMachine(w.app, w.id);
    const why = unhealthy(m, w.checks);
    if (why === undefined) return undefined;
    // A failed or destroyed machine will not come back by waiting.
    if (m.state === "failed" || GONE.has(m.state ?? "")) return `machine ${w.id} ${m.state}${failureOf(m)}`;
    if (Date.now() >= w.deadline) return why;
    if (w.abort.failed) return ABORTED;
    await sleep(Math.min(w.pollMs, Math.max(0, w.deadline - Date.now())));
  }
}

async function destroyAll(api: DeployApi, app: string, ids: string[]): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    ids.map(async (id) => {
      try {
        await api.destroyMachine(app, id, true);
      } catch (err) {
        // Already gone is what was wanted.
        if (!(err instanceof ApiError && err.httpStatus === 404)) failures.push(`${id}: ${reasonOf(err)}`);
      }
    }),
  );
  return failures;
}

/**
 * The immediate strategy: creates the release's machines next to the running ones, waits until each is
 * started with every check passing, and only then destroys the previous machines and marks the release
 * succeeded. If a new machine cannot be created, fails, or stays unhealthy past the wait timeout, the NEW
 * machines are destroyed, the previous ones are untouched, and the release is marked failed with the reason.
 */
export async function deployRelease(o: DeployOptions): Promise<DeployResult> {
  const { api, app } = o;
  const plan = planReplacement(await api.listMachines(app), o.config);
  if (o.strategy === "rolling") return rollRelease(o, plan);
  const created: { machine: Machine; checks: number }[] = [];
  let reason: string | undefined;

  for (const { group, count } of plan.groups) {
    const config = machineConfigFromApp(o.config, o.image, { processGroup: group, release: o.release });
    for (let i = 0; i < count && reason === undefined; i++) {
      try {
        const machine = await api.createMachine(app, {
          ...(o.config.primary_region ? { region: o.config.primary_region } : {}),
          config: config as MachineConfig,
        });
        created.push({ machine, checks: expectedChecks(config) });
        o.progress(`Created machine ${machine.id} (${group}) in region ${machine.region ?? "?"}\n`);
      } catch (err) {
        reason = `cannot create a machine for process group ${group}: ${reasonOf(err)}`;
      }
    }
  }

  if (reason === undefined) {
    const count = created.length === 1 ? "1 machine" : `${created.length} machines`;
    o.progress(
      `Waiting up to ${formatDuration(o.waitTimeoutMs)} for ${count} to start and pass their checks\n`,
    );
    const abort = { failed: false };
    const deadline = Date.now() + o.waitTimeoutMs;
    const reasons = await Promise.all(
      created.map(async ({ machine, checks }) => {
        const why = await waitHealthy({
          api,
          app,
          id: machine.id,
          checks,
          deadline,
          pollMs: o.pollMs ?? 500,
          abort,
        }).catch((err: unknown) => `cannot read machine ${machine.id}: ${reasonOf(err)}`);
        if (why === ABORTED) return undefined;
        if (why !== undefined) abort.failed = true;
        else o.progress(`Machine ${machine.id} is started and healthy\n`);
        return why;
      }),
    );
    reason = reasons.find((r) => r !== undefined);
  }

  if (reason !== undefined) {
    const failures = await destroyAll(
      api,
      app,
      created.map((c) => c.machine.id),
    );
    const leftover = failures.length > 0 ? ` (could not destroy new machines: ${failures.join("; ")})` : "";
    await api.updateRelease(app, o.release, { status: "failed", reason: reason + leftover });
    return { ok: false, reason: reason + leftover };
  }

  const failures = await destroyAll(
    api,
    app,
    plan.previous.map((m) => m.id),
  );
  for (const failure of failures) o.progress(`Warning: could not destroy previous machine ${failure}\n`);
  const machines = created.map((c) => c.machine);
  await api.updateRelease(app, o.release, { status: "succeeded", machine_ids: machines.map((m) => m.id) });
  return {
    ok: true,
    machines,
    destroyed: plan.previous.map((m) => m.id),
    unmanaged: plan.unmanaged,
  };
}

/**
 * The rolling strategy: per process group, creates one new machine, waits until it is started with
 * every check passing, then destroys one previous machine of the group, and only then goes on. If a
 * new machine cannot be created or does not become healthy in time, that machine is destroyed, the
 * release is marked failed, and the machines not replaced yet keep running as they were.
 */
async function rollRelease(o: DeployOptions, plan: ReplacementPlan): Promise<DeployResult> {
  const { api, app } = o;
  const machines: Machine[] = [];
  const destroyed: string[] = [];
  const fail = async (reason: string): Promise<DeployResult> => {
    await api.updateRelease(app, o.release, { status: "failed", reason });
    return { ok: false, reason };
  };
  const destroy = async (ids: string[]) => {
    for (const failure of await destroyAll(api, app, ids)) {
      o.progress(`Warning: could not destroy previous machine ${failure}\n`);
    }
    destroyed.push(...ids);
  };
  for (const { group, count } of plan.groups) {
    const config = machineConfigFromApp(o.config, o.image, { processGroup: group, release: o.release });
    const previous = plan.previous.filter((m) => groupOf(m) === group);
    for (let i = 0; i < count; i++) {
      let machine: Machine;
      try {
        machine = await api.createMachine(app, {
          ...(o.config.primary_region ? { region: o.config.primary_region } : {}),
          config: config as MachineConfig,
        });
      } catch (err) {
        return fail(`cannot create a machine for process group ${group}: ${reasonOf(err)}`);
      }
      o.progress(`Created machine ${machine.id} (${group}), ${i + 1} of ${count}\n`);
      const why = await waitHealthy({
        api,
        app,
        id: machine.id,
        checks: expectedChecks(config),
        deadline: Date.now() + o.waitTimeoutMs,
        pollMs: o.pollMs ?? 500,
        abort: { failed: false },
      }).catch((err: unknown) => `cannot read machine ${machine.id}: ${reasonOf(err)}`);
      if (why !== undefined) {
        const failures = await destroyAll(api, app, [machine.id]);
        const leftover = failures.length > 0 ? ` (could not destroy it: ${failures.join("; ")})` : "";
        return fail(String(why) + leftover);
      }
      machines.push(machine);
      const replaced = previous[i];
      o.progress(
        `Machine ${machine.id} is started and healthy${replaced ? `; replacing ${replaced.id}` : ""}\n`,
      );
      if (replaced) await destroy([replaced.id]);
    }
  }
  // Machines of process groups the config no longer has go once every group has rolled.
  await destroy(plan.previous.map((m) => m.id).filter((id) => !destroyed.includes(id)));
  await api.updateRelease(app, o.release, { status: "succeeded", machine_ids: machines.map((m) => m.id) });
  return { ok: true, machines, destroyed, unmanaged: plan.unmanaged };
}
