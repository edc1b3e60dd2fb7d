import { setTimeout as sleep } from "node:timers/promises";
import {
  type AppConfig,
  type AppMountConfig,
  machineChecksFor,
  machineConfigFromApp,
  mountVolume,
  processGroups,
  testMachineConfig,
} from "@hangar/config";
import { type ApiClient, ApiError } from "./api.js";
import { formatDuration } from "./build-log.js";
import type { Machine, MachineConfig, MachineEvent, Volume } from "./types.js";

/** The part of the API a deploy drives. */
export type DeployApi = Pick<
  ApiClient,
  | "listMachines"
  | "createMachine"
  | "updateMachine"
  | "getMachine"
  | "destroyMachine"
  | "updateRelease"
  | "listVolumes"
  | "createVolume"
>;

/** What the immediate strategy starts from: how many machines per group, and which ones it replaces. */
export interface ReplacementPlan {
  /**
   * Each configured group's machine count: never fewer than it has now, as a deploy never scales a
   * group down (neither does flyctl's, which updates every machine of a group still in the config and
   * destroys only those of removed groups; `scale count` changes counts).
   */
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

/** A machine's mount as the Machines API takes it: by volume id, or by name (Fly's MachineMount). */
interface Mount {
  volume?: string | null;
  name?: string | null;
  path: string;
}
type ConfigWithMounts = MachineConfig & { mounts?: Mount[] | null };

/** The volume a machine has mounted, if any. */
function volumeOf(m: Machine): string | undefined {
  return (
    (m.config as ConfigWithMounts | undefined)?.mounts?.find((mount) => mount.volume)?.volume ?? undefined
  );
}

/** What a deploy does for one process group: the machines it updates in place, and how many it creates. */
interface GroupPlan {
  group: string;
  config: ConfigWithMounts;
  /** The group's [mounts] table, when its machines mount a volume. */
  mount: AppMountConfig | undefined;
  checks: number;
  /**
   * Previous machines that keep their volume: updated in place with the new config, so the release
   * runs on the same disk (a volume is attached to one machine at a time, so it cannot move to a new one).
   */
  updates: Machine[];
  /** Previous machines the new ones replace (destroyed once those are healthy). */
  replaced: Machine[];
  creates: number;
}

/** Each group's plan, or why the config cannot be deployed (a group with more than one [mounts]). */
function groupPlans(o: DeployOptions, plan: ReplacementPlan): GroupPlan[] | string {
  const plans: GroupPlan[] = [];
  for (const { group, count } of plan.groups) {
    const input = machineConfigFromApp(o.config, o.image, { processGroup: group, release: o.release });
    const config = input as ConfigWithMounts;
    const mounts = (o.config.mounts ?? []).filter(
      (m) => m.processes === undefined || m.processes.includes(group),
    );
    if (mounts.length > 1) {
      return `process group ${group} has ${mounts.length} [mounts]; a machine mounts one volume (give each [mounts] its own processes)`;
    }
    const previous = plan.previous.filter((m) => groupOf(m) === group);
    // Every machine on a volume of a group that mounts one stays, updated in place (flyctl's deploy
    // updates them all); count is never below them (planReplacement), so none is left out.
    const updates = mounts.length > 0 ? previous.filter((m) => volumeOf(m) !== undefined) : [];
    plans.push({
      group,
      config,
      mount: mounts[0],
      checks: expectedChecks(input),
      updates,
      replaced: previous.filter((m) => !updates.includes(m)),
      creates: Math.max(0, count - updates.length),
    });
  }
  return plans;
}

/** The config with its mount on `volume`. */
function onVolume(config: ConfigWithMounts, volume: string): ConfigWithMounts {
  return { ...config, mounts: (config.mounts ?? []).map((m) => ({ ...m, volume })) };
}

/**
 * Volumes for new machines, as flyctl's deploy finds them: an unattached volume of the mount's name in
 * the machine's region, else a new one of the mount's initial_size.
 */
class VolumePool {
  private unattached: Volume[] | undefined;
  readonly created: Volume[] = [];

  constructor(
    private readonly api: DeployApi,
    private readonly app: string,
    private readonly progress: (text: string) => void,
  ) {}

  /** A volume for a new machine with this mount, in `region` (the platform's default when undefined). */
  async take(mount: AppMountConfig, region: string | undefined): Promise<Volume> {
    this.unattached ??= (await this.api.listVolumes(this.app)).filter(
      (v) => v.state === "created" && !v.attached_machine_id,
    );
    const spec = mountVolume(mount);
    const i = this.unattached.findIndex(
      (v) => v.name === spec.name && (region === undefined || v.region === region),
    );
    const found = i >= 0 ? this.unattached.splice(i, 1)[0] : undefined;
    if (found) {
      this.progress(
        `Using volume ${found.id} (${found.name}, ${found.size_gb}GB) in region ${found.region}\n`,
      );
      return found;
    }
    // The gateway takes auto_backup_enabled with a create, as Fly's current API does.
    const body: Parameters<DeployApi["createVolume"]>[1] & { auto_backup_enabled?: boolean } = {
      ...spec,
      ...(region ? { region } : {}),
    };
    const volume = await this.api.createVolume(this.app, body);
    this.created.push(volume);
    this.progress(
      `Created volume ${volume.id} (${volume.name}, ${volume.size_gb}GB) in region ${volume.region}\n`,
    );
    return volume;
  }
}

/** Creates one new machine of the group, on a volume of the pool when the group mounts one. */
async function createFor(o: DeployOptions, p: GroupPlan, volumes: VolumePool): Promise<Machine> {
  const region = o.config.primary_region;
  const config = p.mount ? onVolume(p.config, (await volumes.take(p.mount, region)).id) : p.config;
  return o.api.createMachine(o.app, {
    ...(region ? { region } : {}),
    config: config as MachineConfig,
  });
}

/** Updates a previous machine in place with the release's config, on the volume it has. */
async function updateInPlace(o: DeployOptions, p: GroupPlan, m: Machine): Promise<Machine> {
  const volume = volumeOf(m) as string;
  const updated = await o.api.updateMachine(o.app, m.id, {
    config: onVolume(p.config, volume) as MachineConfig,
  });
  o.progress(`Updating machine ${m.id} (${p.group}) in place on its volume ${volume}\n`);
  return updated;
}

/** Gives machines updated in place their previous config back; resolves to what could not be. */
async function rollBack(api: DeployApi, app: string, machines: Machine[]): Promise<string[]> {
  const failures: string[] = [];
  for (const m of machines) {
    try {
      await api.updateMachine(app, m.id, { config: m.config ?? {} });
    } catch (err) {
      failures.push(`${m.id}: ${reasonOf(err)}`);
    }
  }
  return failures;
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
  | {
      ok: true;
      machines: Machine[];
      destroyed: string[];
      unmanaged: Machine[];
      /** Volumes this deploy created for new machines. */
      volumesCreated: string[];
    }
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
  /** The release's config: once healthy, the machine runs its group's machine_checks before it counts. */
  config?: AppConfig;
  progress?: (text: string) => void;
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
    if (why === undefined) return w.config ? machineChecks(w, w.config, m) : undefined;
    // A failed or destroyed machine will not come back by waiting.
    if (m.state === "failed" || GONE.has(m.state ?? "")) return `machine ${w.id} ${m.state}${failureOf(m)}`;
    if (Date.now() >= w.deadline) return why;
    if (w.abort.failed) return ABORTED;
    await sleep(Math.min(w.pollMs, Math.max(0, w.deadline - Date.now())));
  }
}

/**
 * Runs the machine's machine_checks as flyctl's runTestMachines does: one machine per check, created at
 * once with auto_destroy (the check's command, FLY_TEST_MACHINE_IP set to the machine's address, the
 * tested machine's region), then waits until each has ended, within the wait's deadline. Resolves to why
 * the machine does not count (a check that exited non-zero, failed to start or did not end), else undefined.
 */
async function machineChecks(
  w: Waiting,
  config: AppConfig,
  tested: Machine,
): Promise<string | undefined | typeof ABORTED> {
  const checks = machineChecksFor(config, groupOf(tested) ?? "");
  if (checks.length === 0) return undefined;
  const runs: { id: string; name: string }[] = [];
  /** Runs seen ended (auto_destroy removes those); the others are destroyed before this returns. */
  const ended = new Set<string>();
  try {
    for (const [i, check] of checks.entries()) {
      const name = `machine check ${i + 1} of ${checks.length} (${(check.command ?? []).join(" ")}) on machine ${tested.id}`;
      let created: Machine;
      try {
        const base = testMachineConfig(config, check, {
          config: (tested.config ?? {}) as Parameters<typeof testMachineConfig>[2]["config"],
          privateIp: tested.private_ip ?? "",
        });
        created = await w.api.createMachine(w.app, {
          ...(tested.region ? { region: tested.region } : {}),
          config: {
            ...base,
            auto_destroy: true,
            metadata: { ...base.metadata, hangar_machine_check: tested.id },
          } as MachineConfig,
        });
      } catch (err) {
        return `${name} could not be created: ${reasonOf(err)}`;
      }
      w.progress?.(`Running ${name} in machine ${created.id}\n`);
      runs.push({ id: created.id, name });
    }
    for (const run of runs) {
      for (;;) {
        const m = await w.api.getMachine(w.app, run.id);
        if (m.state === "failed") return `${run.name} could not start${failureOf(m)}`;
        const exit = latestExit(m);
        if (exit !== undefined && (m.state === "stopped" || GONE.has(m.state ?? ""))) {
          ended.add(run.id);
          if (exit === 0) break;
          return `${run.name} exited with code ${exit ?? "unknown"}`;
        }
        if (Date.now() >= w.deadline) return `${run.name} did not end in time`;
        if (w.abort.failed) return ABORTED;
        await sleep(Math.min(w.pollMs, Math.max(0, w.deadline - Date.now())));
      }
      w.progress?.(`${run.name[0]?.toUpperCase()}${run.name.slice(1)} passed\n`);
    }
    return undefined;
  } finally {
    // A run that has not ended (still running, failed to start, or not waited for) has nothing left
    // to decide: it goes, as auto_destroy would have removed it once ended.
    await destroyAll(
      w.api,
      w.app,
      runs.filter((r) => !ended.has(r.id)).map((r) => r.id),
    );
  }
}

/** The exit code of a machine's latest exit event: undefined without one, null when it is not known. */
function latestExit(m: Machine): number | null | undefined {
  const exit = (m.events ?? [])
    .filter((e) => e.type === "exit")
    .reduce<MachineEvent | undefined>(
      (a, e) => (a && (a.timestamp ?? 0) >= (e.timestamp ?? 0) ? a : e),
      undefined,
    );
  if (!exit) return undefined;
  const code = (exit.request as { exit_event?: { exit_code?: number | null } } | undefined)?.exit_event
    ?.exit_code;
  return code ?? null;
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
 * Machines on a volume ([mounts]) are updated in place instead, keeping their volume, and get their previous
 * config back on failure; new machines of such a group get an unattached volume of the mount's name or a new one.
 */
export async function deployRelease(o: DeployOptions): Promise<DeployResult> {
  const { api, app } = o;
  const plan = planReplacement(await api.listMachines(app), o.config);
  const groups = groupPlans(o, plan);
  if (typeof groups === "string") {
    await api.updateRelease(app, o.release, { status: "failed", reason: groups });
    return { ok: false, reason: groups };
  }
  const volumes = new VolumePool(api, app, o.progress);
  if (o.strategy === "rolling") return rollRelease(o, plan, groups, volumes);
  const created: { machine: Machine; checks: number }[] = [];
  const updated: { machine: Machine; checks: number; before: Machine }[] = [];
  let reason: string | undefined;

  // New machines first: they are undone by destroying them, before any machine is changed in place.
  for (const p of groups) {
    for (let i = 0; i < p.creates && reason === undefined; i++) {
      try {
        const machine = await createFor(o, p, volumes);
        created.push({ machine, checks: p.checks });
        o.progress(`Created machine ${machine.id} (${p.group}) in region ${machine.region ?? "?"}\n`);
      } catch (err) {
        reason = `cannot create a machine for process group ${p.group}: ${reasonOf(err)}`;
      }
    }
  }
  for (const p of groups) {
    for (const m of p.updates) {
      if (reason !== undefined) break;
      try {
        updated.push({ machine: await updateInPlace(o, p, m), checks: p.checks, before: m });
      } catch (err) {
        reason = `cannot update machine ${m.id} of process group ${p.group}: ${reasonOf(err)}`;
      }
    }
  }

  const started = [...created, ...updated];
  if (reason === undefined) {
    const count = started.length === 1 ? "1 machine" : `${started.length} machines`;
    o.progress(
      `Waiting up to ${formatDuration(o.waitTimeoutMs)} for ${count} to start and pass their checks\n`,
    );
    const abort = { failed: false };
    const deadline = Date.now() + o.waitTimeoutMs;
    const reasons = await Promise.all(
      started.map(async ({ machine, checks }) => {
        const why = await waitHealthy({
          api,
          app,
          id: machine.id,
          checks,
          deadline,
          pollMs: o.pollMs ?? 500,
          abort,
          config: o.config,
          progress: o.progress,
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
    const failures = [
      ...(await destroyAll(
        api,
        app,
        created.map((c) => c.machine.id),
      )),
      ...(
        await rollBack(
          api,
          app,
          updated.map((u) => u.before),
        )
      ).map((f) => `rolling back ${f}`),
    ];
    const leftover = failures.length > 0 ? ` (could not undo: ${failures.join("; ")})` : "";
    await api.updateRelease(app, o.release, { status: "failed", reason: reason + leftover });
    return { ok: false, reason: reason + leftover };
  }

  const kept = new Set(updated.map((u) => u.machine.id));
  const gone = plan.previous.map((m) => m.id).filter((id) => !kept.has(id));
  const failures = await destroyAll(api, app, gone);
  for (const failure of failures) o.progress(`Warning: could not destroy previous machine ${failure}\n`);
  const machines = started.map((c) => c.machine);
  await api.updateRelease(app, o.release, { status: "succeeded", machine_ids: machines.map((m) => m.id) });
  return {
    ok: true,
    machines,
    destroyed: gone,
    unmanaged: plan.unmanaged,
    volumesCreated: volumes.created.map((v) => v.id),
  };
}

/**
 * The rolling strategy: per process group, creates one new machine, waits until it is started with
 * every check passing, then destroys one previous machine of the group, and only then goes on. If a
 * new machine cannot be created or does not become healthy in time, that machine is destroyed, the
 * release is marked failed, and the machines not replaced yet keep running as they were.
 */
async function rollRelease(
  o: DeployOptions,
  plan: ReplacementPlan,
  groups: GroupPlan[],
  volumes: VolumePool,
): Promise<DeployResult> {
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
  const healthy = (p: GroupPlan, machine: Machine) =>
    waitHealthy({
      api,
      app,
      id: machine.id,
      checks: p.checks,
      deadline: Date.now() + o.waitTimeoutMs,
      pollMs: o.pollMs ?? 500,
      abort: { failed: false },
      config: o.config,
      progress: o.progress,
    }).catch((err: unknown) => `cannot read machine ${machine.id}: ${reasonOf(err)}`);
  for (const p of groups) {
    // Machines on a volume are updated in place one at a time; a failed one gets its config back.
    for (const before of p.updates) {
      let machine: Machine;
      try {
        machine = await updateInPlace(o, p, before);
      } catch (err) {
        return fail(`cannot update machine ${before.id} of process group ${p.group}: ${reasonOf(err)}`);
      }
      const why = await healthy(p, machine);
      if (why !== undefined) {
        const failures = await rollBack(api, app, [before]);
        const leftover = failures.length > 0 ? ` (could not roll it back: ${failures.join("; ")})` : "";
        return fail(String(why) + leftover);
      }
      machines.push(machine);
      o.progress(`Machine ${machine.id} is started and healthy\n`);
    }
    for (let i = 0; i < p.creates; i++) {
      let machine: Machine;
      try {
        machine = await createFor(o, p, volumes);
      } catch (err) {
        return fail(`cannot create a machine for process group ${p.group}: ${reasonOf(err)}`);
      }
      o.progress(`Created machine ${machine.id} (${p.group}), ${i + 1} of ${p.creates}\n`);
      const why = await healthy(p, machine);
      if (why !== undefined) {
        const failures = await destroyAll(api, app, [machine.id]);
        const leftover = failures.length > 0 ? ` (could not destroy it: ${failures.join("; ")})` : "";
        return fail(String(why) + leftover);
      }
      machines.push(machine);
      const replaced = p.replaced[i];
      o.progress(
        `Machine ${machine.id} is started and healthy${replaced ? `; replacing ${replaced.id}` : ""}\n`,
      );
      if (replaced) await destroy([replaced.id]);
    }
  }
  // Machines of process groups the config no longer has go once every group has rolled.
  const kept = new Set(machines.map((m) => m.id));
  await destroy(plan.previous.map((m) => m.id).filter((id) => !destroyed.includes(id) && !kept.has(id)));
  await api.updateRelease(app, o.release, { status: "succeeded", machine_ids: machines.map((m) => m.id) });
  return {
    ok: true,
    machines,
    destroyed,
    unmanaged: plan.unmanaged,
    volumesCreated: volumes.created.map((v) => v.id),
  };
}
