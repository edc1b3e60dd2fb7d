import { setTimeout as sleep } from "node:timers/promises";
import {
  type AppConfig,
  DEFAULT_VOLUME_SIZE_GB,
  defaultProcessGroup,
  durationToMs,
  GUEST_DEFAULTS,
  machineChecksFor,
  machineConfigFromApp,
  mountVolume,
  processGroups,
  ReleaseConfigSchema,
  releaseCommandGuest,
  splitShellWords,
  TEST_MACHINE_GROUP,
  testMachineConfig,
} from "@hangar/config";
import {
  type CommandKind,
  commandKey,
  commandRun,
  currentRelease,
  type ExistingMachine,
  inProgress,
  isEdgeRelease,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machineMetadataOf,
  machinesStream,
  newInstanceId,
  newMachineId,
  newVolumeId,
  type Release,
  type ReleaseCommand,
  type ReleaseEvent,
  type ReleaseGroup,
  type ReleasesState,
  releaseDecider,
  releasesStream,
  type Volume,
} from "@hangar/domain";
import { CommandHandler, type EventStore, isDomainError } from "@hangar/eventstore";
import {
  AggregateView,
  handleThenWait,
  placeThenCreateMachine,
  sendCommand,
  subjects,
  type VolumeAttachRequest,
  type VolumeCommandReply,
  type VolumeCreateRequest,
} from "@hangar/service";
import { type Context, context, type Logger, ROOT_CONTEXT, withSpan } from "@hangar/telemetry";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Fleet } from "../fleet.js";
import { DRAIN_POLL_MS, type LoadBoard } from "../load.js";
import { planRollout, type RolloutMachine, type RolloutStep, type RolloutTarget } from "./rollout.js";

/** flyctl's default wait for a new machine to start and pass its checks. */
export const DEFAULT_RELEASE_WAIT_MS = 5 * 60_000;
/** How long a release_command's stopped machine (and so its output) stays after its release ended. */
const RELEASE_COMMAND_KEEP_MS = 15_000;
/** FLY_PROCESS_GROUP of a release_command machine, as flyctl's. */
const RELEASE_COMMAND_GROUP = "fly_app_release_command";
/** flyctl's default release_command_timeout. */
export const DEFAULT_RELEASE_COMMAND_TIMEOUT_MS = 5 * 60_000;

/** How long a new machine's volume create may take (its disk is made on its host). */
const VOLUME_CREATE_TIMEOUT_MS = 60_000;

/** Slots past a group's count a release may have used (a slot whose id was taken is skipped). */
const STRANDED_SLOT_MARGIN = 8;

/** The ids a release's new machines (and its rollback's) may have: its groups' slots, with a margin. */
function slotIdsOf(r: Release): Set<string> {
  const ids = new Set<string>();
  for (const g of [...r.groups, ...r.previousGroups])
    for (let slot = 0; slot < g.count + STRANDED_SLOT_MARGIN; slot++) {
      ids.add(newMachineId(`${r.releaseId}/${g.group}/${slot}`));
      ids.add(newMachineId(`${r.releaseId}/rollback/${g.group}/${slot}`));
    }
  return ids;
}

/** The command id of the volume create of a release's new machine: attempt 0, then 1, 2 ... */
function ownVolumeKey(machineId: string, attempt: number): string {
  return `release-volume-${machineId}${attempt > 0 ? `-${attempt}` : ""}`;
}
const GONE = new Set(["destroying", "destroyed"]);

export type ReleasesView = AggregateView<ReleasesState, ReleaseCommand, ReleaseEvent>;

export interface OrchestratorOptions {
  nc: NatsConnection;
  store: EventStore;
  fleet: Fleet;
  board: LoadBoard;
  logger: Logger;
  /** Where a release's machines go when its config names no primary_region and the app has none. */
  defaultRegion: string;
  drainTimeoutMs: number;
  drainPollMs?: number;
  /** Whether this scheduler may act (its lease is held). */
  isHeld: () => boolean;
  now?: () => number;
}

/**
 * The release orchestrator (in the scheduler, under its lease): carries out every release created
 * with `orchestrated`, so a deploy goes on and ends (succeeded, or failed and rolled back) whatever
 * happens to the client that asked for it. All it knows is in the RELEASES and MACHINES logs: a
 * release's target (machines per group, the release it replaces) is recorded when it starts, each new
 * machine's id comes from its release and slot, and every step is planned afresh from the machines
 * as they are, so a new leader goes on where a killed one stopped.
 */
export class ReleaseOrchestrator {
  private readonly releases: CommandHandler<ReleasesState, ReleaseCommand, ReleaseEvent>;
  private readonly machines: CommandHandler<MachineState, MachineCommand, MachineEvent>;
  /** Apps being advanced now (one pass per app at a time), and those to advance again right after. */
  private readonly busy = new Set<string>();
  private readonly again = new Set<string>();
  private readonly unsubscribe: (() => void)[] = [];
  /** Why a release_command machine could not be created, by machine id (its release fails with it). */
  private readonly commandErrors = new Map<string, string>();
  /** Creates this process planned and has not seen land yet: since when, and their last error. */
  private readonly creating = new Map<
    string,
    { app: string; release: number; since: number; error: string }
  >();
  /**
   * The trace each release was created in (the deploy's: the gateway appends it under the client's
   * request), so the steps this process takes join it; a release taken over from another leader, or
   * read from history, starts traces of its own.
   */
  private readonly traces = new Map<string, Context>();
  /** Steps in flight, by machine id: a step is taken once even while the next passes plan it again. */
  private readonly stepping = new Set<string>();
  /**
   * When this process first saw each new machine of a release (its wait timeout counts from then), by
   * machine id, with the release it was seen on: a machine updated in place (or back, by a rollback)
   * waits afresh on each release it runs.
   */
  private readonly firstSeen = new Map<string, { release: number; since: number }>();
  /** In-place updates this process planned and has not seen land yet (see stuckStep). */
  private readonly updating = new Map<
    string,
    { app: string; release: number; to: number; since: number; error: string }
  >();
  private readonly abort = new AbortController();
  private readonly now: () => number;

  private constructor(
    private readonly opts: OrchestratorOptions,
    readonly view: ReleasesView,
  ) {
    this.releases = new CommandHandler(opts.store, releasesStream, releaseDecider);
    this.machines = new CommandHandler(opts.store, machinesStream, machineDecider);
    this.now = opts.now ?? Date.now;
  }

  static async start(opts: OrchestratorOptions): Promise<ReleaseOrchestrator> {
    const view = await AggregateView.start(opts.store, releasesStream, releaseDecider);
    await view.caughtUp;
    const orchestrator = new ReleaseOrchestrator(opts, view);
    orchestrator.watch();
    return orchestrator;
  }

  /** Whether a release of the app is being carried out (the autoscaler leaves its machines alone meanwhile). */
  deploying(app: string): boolean {
    const state = this.view.get(app);
    return state !== undefined && inProgress(state).length > 0;
  }

  /**
   * Advances every app with a release in progress: on every scheduler pass, and at once when one of
   * its machines or releases changes (a machine healthy is the next step's cue).
   */
  kick(): void {
    if (this.abort.signal.aborted || !this.opts.isHeld()) return;
    for (const [app, state] of this.view.entries()) {
      if (inProgress(state).length > 0) this.advanceSoon(app);
    }
  }

  /** Advances the app now, or once more right after the pass in progress when there is one. */
  private advanceSoon(app: string): void {
    if (this.busy.has(app)) {
      this.again.add(app);
      return;
    }
    this.busy.add(app);
    this.advance(app)
      .catch((err: unknown) => {
        if (this.abort.signal.aborted || !this.opts.isHeld()) return;
        this.opts.logger.warn(
          { err, app },
          "release step failed for now; it is tried again on the next pass",
        );
      })
      .finally(() => {
        this.busy.delete(app);
        if (this.again.delete(app) && !this.abort.signal.aborted && this.opts.isHeld()) this.advanceSoon(app);
      });
  }

  /** Follows machine and release changes of apps with a release in progress. */
  private watch(): void {
    const onChange = (app: string) => {
      const state = this.view.get(app);
      if (state && inProgress(state).length > 0 && !this.abort.signal.aborted && this.opts.isHeld())
        this.advanceSoon(app);
    };
    this.unsubscribe.push(
      this.opts.fleet.machines.subscribe((c) => {
        if (c.state.status !== "absent") onChange(c.state.app);
      }),
      this.view.subscribe((c) => {
        for (const { event } of c.events) {
          const key = `${c.aggregateId}#${event.data.version ?? 0}`;
          // A live change runs in its publisher's trace context (libs/eventstore replay).
          if (c.live && event.type === "ReleaseCreated") this.traces.set(key, context.active());
          if (event.type === "ReleaseSucceeded" || event.type === "ReleaseFailed") this.traces.delete(key);
        }
        onChange(c.aggregateId);
      }),
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const off of this.unsubscribe.splice(0)) off();
    await this.view.stop();
  }

  private async advance(app: string): Promise<void> {
    const state = this.view.get(app);
    if (!state) return;
    const open = inProgress(state);
    const release = open.at(-1);
    if (!release) return;
    // An older release still open when a newer one came: the newer one takes the app over, once the
    // older one's release_command (if running) has ended: a migration is never cut off half-way.
    const older = open.slice(0, -1);
    if (older.some(commandRunning)) {
      for (const r of older.filter(commandRunning)) await this.commandsDone(app, r, appConfigOf(r) ?? {});
      return;
    }
    for (const older of open.slice(0, -1))
      await this.command(
        app,
        { type: "FailRelease", version: older.version, reason: `superseded by v${release.version}` },
        `fail-${older.releaseId}`,
      );
    if (!this.opts.fleet.appExists(app)) {
      await this.command(
        app,
        { type: "FailRelease", version: release.version, reason: `app ${app} no longer exists` },
        `fail-${release.releaseId}`,
      );
      return;
    }
    // An edge release runs in the proxies (from when it is appended): no machine to roll.
    if (isEdgeRelease(release)) return this.edgeDone(app, state, release);
    switch (release.status) {
      case "pending":
        return this.begin(app, state, release);
      case "running":
        return this.roll(app, release);
      case "rolling_back":
        return this.rollBack(app, state, release);
      default:
        return;
    }
  }

  /**
   * Ends an edge release at once: started with no machines (naming the release it replaces), then
   * succeeded. The app's machines, if an earlier image release left some, are left as they are.
   */
  private async edgeDone(app: string, state: ReleasesState, release: Release): Promise<void> {
    if (release.status === "pending") {
      const previous = currentRelease({
        releases: state.releases.filter((r) => r.version < release.version),
      });
      await this.command(
        app,
        {
          type: "StartRelease",
          version: release.version,
          groups: [],
          previousVersion: previous?.version ?? 0,
          previousGroups: [],
          startedAtMs: this.now(),
        },
        `start-${release.releaseId}`,
      );
    }
    await this.command(
      app,
      { type: "SucceedRelease", version: release.version, machineIds: [] },
      `succeed-${release.releaseId}`,
    );
    this.opts.logger.info(
      { app, release: release.version, bundle: release.edge?.bundleDigest },
      "edge release succeeded",
    );
  }

  /** Records what the release converges to: each group's count (never fewer than it has) and the release it replaces. */
  private async begin(app: string, state: ReleasesState, release: Release): Promise<void> {
    const config = appConfigOf(release);
    const problem =
      config === undefined
        ? "the release's config is not valid JSON"
        : configProblem(config, release.imageRef);
    if (problem !== undefined) {
      await this.command(
        app,
        { type: "FailRelease", version: release.version, reason: problem },
        `fail-${release.releaseId}`,
      );
      return;
    }
    await this.sweepReleaseCommands(app);
    if (!(await this.commandsDone(app, release, config as AppConfig))) return;
    // The app's serving machines: those of a release still open or failed (one this release
    // supersedes, half rolled out) are not counted, and go as old machines; but a machine on a volume
    // is the app's own whatever release it was last updated to (an in-place rollout changes the
    // machines it had), so it counts and is updated again.
    const unserved = new Set(
      state.releases
        .filter((r) => r.version !== release.version && r.status !== "succeeded")
        .map((r) => r.version),
    );
    const live = this.live(app).filter(
      (m) => m.group !== undefined && (!unserved.has(m.release) || m.volume !== undefined),
    );
    const counted = (group: string) => live.filter((m) => m.group === group).length;
    // Each slot keeps the region of a machine it replaces: a group spread over regions stays spread.
    const regions = (group: string) =>
      live
        .filter((m) => m.group === group)
        .map((m) => m.region ?? "")
        .sort();
    const fallback = (config as AppConfig).primary_region || this.opts.defaultRegion;
    const groups = processGroups(config as AppConfig).map((group) => {
      const spread = regions(group);
      return { group, count: Math.max(1, spread.length), regions: spread.length > 0 ? spread : [fallback] };
    });
    const previousGroups = [...new Set(live.map((m) => m.group as string))]
      .sort()
      .map((group) => ({ group, count: counted(group), regions: regions(group) }));
    const previous = currentRelease({ releases: state.releases.filter((r) => r.version < release.version) });
    await this.command(
      app,
      {
        type: "StartRelease",
        version: release.version,
        groups,
        previousVersion: previous?.version ?? 0,
        previousGroups,
        startedAtMs: this.now(),
      },
      `start-${release.releaseId}`,
    );
    this.opts.logger.info(
      { app, release: release.version, strategy: release.strategy, groups },
      "release started",
    );
  }

  /**
   * The release's commands, in turn: its release_command, then (a first deploy by `hangar launch`, as
   * `fly launch`'s) its seed_command; true once each has exited 0 or there is none.
   */
  private async commandsDone(app: string, release: Release, config: AppConfig): Promise<boolean> {
    if (!(await this.commandDone(app, release, config, "release"))) return false;
    if (!release.seed) return true;
    // The release as recorded now: the release_command's end may have just been appended.
    const now = this.view.get(app)?.releases.find((r) => r.version === release.version) ?? release;
    return this.commandDone(app, now, config, "seed");
  }

  /**
   * Runs the release's [deploy] release_command (or seed_command) once, in a machine of its own (the
   * release's image, the app's env and secrets, no service, no restart) before any machine is replaced;
   * resolves to true once it has exited 0 (or there is none). A non-zero exit, a start that failed or a
   * timeout fails the release, and nothing else is touched. The machine's id comes from the release, and
   * the start and the end are recorded, so a new leader neither runs it again nor loses its outcome.
   */
  private async commandDone(
    app: string,
    release: Release,
    config: AppConfig,
    kind: CommandKind,
  ): Promise<boolean> {
    const key = commandKey(kind);
    const command = (kind === "seed" ? config.deploy?.seed_command : config.deploy?.release_command)?.trim();
    if (!command) return true;
    const rc = commandRun(release, kind);
    if (rc.exitCode === 0) return true;
    const fail = (reason: string) =>
      this.command(
        app,
        { type: "FailRelease", version: release.version, reason },
        `fail-${release.releaseId}`,
      );
    if (rc.reason || rc.exitCode !== null) {
      await fail(rc.reason ? `${key} ${rc.reason}` : `${key} exited with code ${rc.exitCode}`);
      return false;
    }
    // The release_command's ids and idempotency keys are those it always had; the seed's its own.
    const suffix = kind === "seed" ? "seed-" : "";
    const machineId = rc.machineId || newMachineId(`${release.releaseId}/${key}`);
    if (!rc.machineId) {
      await this.command(
        app,
        {
          type: "StartReleaseCommand",
          version: release.version,
          machineId,
          ...(kind === "seed" ? { kind } : {}),
        },
        `release-command-${suffix}${release.releaseId}`,
      );
      this.opts.logger.info({ app, release: release.version, machine: machineId, command }, `${key} started`);
    }
    let timeoutMs = DEFAULT_RELEASE_COMMAND_TIMEOUT_MS;
    try {
      if (config.deploy?.release_command_timeout)
        timeoutMs = durationToMs(config.deploy.release_command_timeout);
    } catch {
      // The gateway checks the config; a value it let through that does not parse keeps the default.
    }
    // Counted from when this process first asked for it: a machine that cannot be created times out too.
    const seen = this.firstSeen.get(machineId)?.since ?? this.now();
    this.firstSeen.set(machineId, { release: release.version, since: seen });
    const late = this.now() - seen > timeoutMs;
    const machine = this.opts.fleet.machine(app, machineId);
    if (!machine && !late) {
      if (this.stepping.has(machineId)) return false;
      const group = defaultProcessGroup(config);
      const base = machineConfigFromApp(config, release.imageRef, {
        processGroup: group,
        release: release.version,
      });
      const groupGuests = this.opts.fleet.machines
        .ofApp(app)
        .filter(
          (e) => !GONE.has(e.state.status) && safeMetadata(e.state.configJson).fly_process_group === group,
        )
        .map((e) => guestOf(e.state.configJson));
      // As flyctl's ToReleaseMachineConfig: the command, with [experimental] entrypoint but not exec
      // (which would run instead of it); no services, checks, mounts, statics or metrics; env says so.
      const { mounts: _mounts, statics: _statics, metrics: _metrics, ...kept } = base;
      const entrypoint = config.experimental?.entrypoint;
      const run: Record<string, unknown> = {
        ...kept,
        env: { ...base.env, RELEASE_COMMAND: "1", FLY_PROCESS_GROUP: RELEASE_COMMAND_GROUP },
        guest: releaseCommandGuest(config, groupGuests),
        init: { cmd: splitShellWords(command), ...(entrypoint ? { entrypoint } : {}) },
        services: [],
        checks: {},
        restart: { policy: "no" },
        // Swept with the release's other command machines; a seed's says which it is.
        metadata: {
          hangar_release_command: String(release.version),
          ...(kind === "seed" ? { hangar_command: "seed" } : {}),
        },
      };
      this.launchOneOff(app, release, machineId, run, {
        span: `${kind} command machine`,
        what: `${key} machine`,
      });
      return false;
    }
    const finish = oneOffEnd(machine, late, timeoutMs, this.commandErrors.get(machineId));
    if (!finish) return false;
    await this.command(
      app,
      {
        type: "FinishReleaseCommand",
        version: release.version,
        ...finish,
        ...(kind === "seed" ? { kind } : {}),
      },
      `release-command-end-${suffix}${release.releaseId}`,
    );
    this.opts.logger.info({ app, release: release.version, machine: machineId, ...finish }, `${key} ended`);
    // The stopped machine stays until the release has ended and a little longer (sweepReleaseCommands):
    // its host keeps its output for `hangar deploy` and `hangar logs` meanwhile. One that overran its
    // timeout is stopped for good now.
    if (machine && !GONE.has(machine.status) && machine.status !== "stopped" && machine.status !== "failed")
      await this.machine(
        app,
        machineId,
        { type: "DestroyMachine", force: true, nowMs: this.now() },
        "destroy",
      );
    if (finish.exitCode === 0 && !finish.reason) return true;
    await fail(finish.reason ? `${key} ${finish.reason}` : `${key} exited with code ${finish.exitCode}`);
    return false;
  }

  /**
   * Destroys the release_command machines of releases that have ended (kept a while after their end
   * for their output, and swept again when the next release begins, should a leader have died meanwhile).
   */
  private async sweepReleaseCommands(app: string): Promise<void> {
    if (this.abort.signal.aborted || !this.opts.isHeld()) return;
    await this.freeStrandedVolumes(app);
    const ended = new Set(
      (this.view.get(app)?.releases ?? [])
        .filter((r) => r.status === "succeeded" || r.status === "failed")
        .map((r) => String(r.version)),
    );
    for (const { state } of this.opts.fleet.machines.ofApp(app)) {
      const metadata = safeMetadata(state.configJson);
      const of = metadata.hangar_release_command;
      if (of === undefined || !ended.has(of) || GONE.has(state.status)) continue;
      // Only one that has exited: a release_command still running is never cut off. A machine check
      // still running once its release has ended (its machine failed, or a sibling's check did) has
      // nothing left to decide: it goes.
      if (metadata.hangar_machine_check === undefined && !["stopped", "failed"].includes(state.status))
        continue;
      await this.machine(
        app,
        state.machineId,
        { type: "DestroyMachine", force: true, nowMs: this.now() },
        "destroy",
      );
    }
  }

  private async roll(app: string, release: Release): Promise<void> {
    const config = appConfigOf(release) as AppConfig;
    const target: RolloutTarget = {
      release: release.version,
      groups: release.groups,
      strategy: release.strategy as RolloutTarget["strategy"],
      maxUnavailable: release.maxUnavailable,
      slotId: (group, slot) => newMachineId(`${release.releaseId}/${group}/${slot}`),
      inPlace: (group) =>
        mountsOf(this.configFor(config, release.imageRef, release.version, group))[0]?.name ?? undefined,
    };
    const stuck = this.stuckCreate(app, release, waitOf(release));
    const decision = stuck
      ? { kind: "fail" as const, reason: stuck }
      : planRollout(
          target,
          this.rolloutMachines(app, release.version, waitOf(release), { release, config }),
          this.taken(app),
        );
    switch (decision.kind) {
      case "done":
        await this.command(
          app,
          { type: "SucceedRelease", version: release.version, machineIds: decision.machineIds },
          `succeed-${release.releaseId}`,
        );
        this.opts.logger.info({ app, release: release.version }, "release succeeded");
        return;
      case "fail":
        // Creates of the rollout that never landed are not the rollback's to wait for.
        for (const [id, p] of this.creating)
          if (p.app === app && p.release === release.version) this.creating.delete(id);
        for (const [id, p] of this.updating)
          if (p.app === app && p.release === release.version) this.updating.delete(id);
        this.opts.logger.warn(
          { app, release: release.version, reason: decision.reason },
          "release failed: rolling back",
        );
        await this.command(
          app,
          { type: "RollBackRelease", version: release.version, reason: decision.reason },
          `rollback-${release.releaseId}`,
        );
        return;
      case "act":
        this.take(
          app,
          decision.steps,
          (group) => this.configFor(config, release.imageRef, release.version, group),
          release.groups,
          release.version,
          config,
        );
        return;
    }
  }

  /** Brings the previous release back (its image, config and counts) at once, then ends the release failed. */
  private async rollBack(app: string, state: ReleasesState, release: Release): Promise<void> {
    const found = state.releases.find((r) => r.version === release.previousVersion);
    const config = found ? appConfigOf(found) : undefined;
    // A previous release whose config gives no machine (one that no longer loads) cannot be brought
    // back: the release's own machines just go.
    const unusable =
      found &&
      (config === undefined ? "its config is not valid JSON" : configProblem(config, found.imageRef));
    const previous = unusable ? undefined : found;
    const groupsOfPrevious = new Set(previous && config ? processGroups(config) : []);
    const fail = (why: string) =>
      this.command(
        app,
        {
          type: "FailRelease",
          version: release.version,
          reason: `${release.reason}; ${why}`,
          rolledBackTo: 0,
        },
        `fail-${release.releaseId}`,
      );
    const target: RolloutTarget = {
      release: previous?.version ?? -1,
      groups: previous
        ? release.previousGroups.filter((g) => g.count > 0 && groupsOfPrevious.has(g.group))
        : [],
      strategy: "immediate",
      maxUnavailable: "",
      slotId: (group, slot) => newMachineId(`${release.releaseId}/rollback/${group}/${slot}`),
      inPlace: (group) =>
        previous !== undefined && config !== undefined
          ? (mountsOf(this.configFor(config, previous.imageRef, previous.version, group))[0]?.name ??
            undefined)
          : undefined,
    };
    let machines = this.rolloutMachines(app, target.release, waitOf(release));
    // With nothing to return to, only this release's own machines go; every other machine stays,
    // those it updated in place on their volumes too (on its config: there is none to go back to).
    if (!previous) {
      const made = slotIdsOf(release);
      machines = machines.filter(
        (m) => m.release === release.version && (m.volume === undefined || made.has(m.id)),
      );
    }
    const stuck = this.stuckCreate(app, release, waitOf(release));
    const decision = stuck
      ? { kind: "fail" as const, reason: stuck }
      : planRollout(target, machines, this.taken(app));
    switch (decision.kind) {
      case "done":
        if (!previous && unusable) {
          await fail(
            `v${found?.version} cannot be brought back (${unusable}); the release's machines were removed`,
          );
          return;
        }
        await this.command(
          app,
          {
            type: "FailRelease",
            version: release.version,
            reason: release.reason,
            rolledBackTo: previous?.version ?? 0,
          },
          `fail-${release.releaseId}`,
        );
        this.opts.logger.info(
          { app, release: release.version, rolled_back_to: previous?.version ?? 0 },
          "release failed and rolled back",
        );
        return;
      case "fail":
        await fail(
          previous
            ? `returning to v${previous.version} failed too: ${decision.reason}`
            : `removing its machines failed too: ${decision.reason}`,
        );
        return;
      case "act": {
        // A machine of the previous release left cordoned (a leader that stopped half-way through its
        // drain) would count as serving while no proxy routes to it: it is let back in first.
        if (previous) await this.uncordonAll(app, previous.version);
        if (!previous || !config) {
          this.take(app, decision.steps, () => undefined, [], release.version);
          return;
        }
        this.take(
          app,
          decision.steps,
          (group) => this.configFor(config, previous.imageRef, previous.version, group),
          release.previousGroups,
          release.version,
          config,
        );
        return;
      }
    }
  }

  /** Lifts the cordon of the release's live machines. */
  private async uncordonAll(app: string, version: number): Promise<void> {
    for (const { state } of this.opts.fleet.machines.ofApp(app)) {
      if (!state.cordoned || GONE.has(state.status)) continue;
      if (Number(safeMetadata(state.configJson).hangar_release) !== version) continue;
      await this.machine(app, state.machineId, { type: "UncordonMachine", nowMs: this.now() }, "uncordon");
    }
  }

  /**
   * Why a machine this release planned has not come to exist within the wait: placement or its
   * create kept failing (no capacity, no host in its region, a config no machine can be made of); or
   * why a machine it updates in place has not taken the update within the wait.
   */
  private stuckCreate(app: string, release: Release, waitMs: number): string | undefined {
    const now = this.now();
    for (const [id, p] of this.creating) {
      if (p.app !== app || p.release !== release.version) continue;
      if (this.opts.fleet.machine(app, id)) {
        this.creating.delete(id);
        continue;
      }
      if (now - p.since > waitMs)
        return `machine ${id} could not be created within ${Math.round(waitMs / 1000)} s${p.error ? `: ${p.error}` : ""}`;
    }
    // An update in place that has not landed (refused: a user's lease on the machine; or failing).
    for (const [id, p] of this.updating) {
      if (p.app !== app || p.release !== release.version) continue;
      const m = this.opts.fleet.machine(app, id);
      if (!m || GONE.has(m.status) || Number(safeMetadata(m.configJson).hangar_release) === p.to) {
        this.updating.delete(id);
        continue;
      }
      if (now - p.since > waitMs)
        return `machine ${id} could not be updated in place within ${Math.round(waitMs / 1000)} s${p.error ? `: ${p.error}` : ""}`;
    }
    return undefined;
  }

  private configFor(
    config: AppConfig,
    image: string,
    release: number,
    group: string,
  ): Record<string, unknown> {
    return machineConfigFromApp(config, image, { processGroup: group, release }) as Record<string, unknown>;
  }

  /** Starts each step not already in flight; they run concurrently, and the next pass plans from what they did. */
  private take(
    app: string,
    steps: RolloutStep[],
    configOf: (group: string) => Record<string, unknown> | undefined,
    groups: ReleaseGroup[],
    /** The release being carried out (its trace is the steps' parent). */
    release: number,
    /** The app config the steps' machines are made of: the volumes of new machines come from its [mounts]. */
    appConfig?: AppConfig,
  ): void {
    for (const step of steps) {
      const id = step.machineId;
      if (this.stepping.has(id)) continue;
      this.stepping.add(id);
      if (step.kind === "create" && !this.creating.has(id))
        this.creating.set(id, { app, release, since: this.now(), error: "" });
      if (step.kind === "update" && !this.updating.has(id)) {
        const to = Number(releaseOfConfig(configOf(step.group) ?? {}));
        this.updating.set(id, { app, release, to, since: this.now(), error: "" });
      }
      const work = () => {
        switch (step.kind) {
          case "create": {
            const config = configOf(step.group);
            const region = slotRegion(groups, step.group, step.slot);
            return config && mountsOf(config).length > 0
              ? this.createOnVolume(
                  app,
                  id,
                  step.group,
                  config,
                  region ?? this.regionOf(app, step.group),
                  appConfig,
                )
              : this.create(app, id, step.group, config, region);
          }
          case "update":
            return this.update(app, id, configOf(step.group), release);
          case "destroy":
            return this.destroy(app, id);
        }
      };
      withSpan(
        `release ${step.kind} machine`,
        { attributes: { "hangar.app": app, "hangar.machine_id": id, "hangar.release": release } },
        work,
        this.traces.get(`${app}#${release}`) ?? ROOT_CONTEXT,
      )
        .catch((err: unknown) => {
          if (this.abort.signal.aborted) return;
          const planned = this.creating.get(id) ?? this.updating.get(id);
          if (planned) planned.error = err instanceof Error ? err.message : String(err);
          this.opts.logger.warn(
            { err, app, machine: id, step: step.kind },
            "release step failed for now; planned again on the next pass",
          );
        })
        .finally(() => this.stepping.delete(id));
    }
  }

  private async create(
    app: string,
    machineId: string,
    group: string,
    config: Record<string, unknown> | undefined,
    region = this.regionOf(app, group),
  ): Promise<void> {
    if (!config) throw new Error(`no machine config for process group ${group || "(release_command)"}`);
    this.checkHeld();
    await placeThenCreateMachine(
      { nc: this.opts.nc, machines: this.machines, view: this.opts.fleet.machines },
      { app, machineId, region, config },
    ).catch((err: unknown) => {
      if (!isDomainError(err, "already_exists")) throw err;
    });
    this.opts.logger.info({ app, machine: machineId, group }, "release machine created");
  }

  /**
   * Creates a machine of a group that mounts a volume, as flyctl's deploy does: on a volume already
   * attached to this machine id (a resumed step's), else on the volume this step created earlier,
   * else on an unattached volume of the mount's name in the slot's region (the oldest; not one another
   * step of this process is making for its own machine), else on a new one of the mount's size. The
   * new volume's create is keyed by the machine (`release-volume-<id>`, then `-1`, `-2` ... when an
   * earlier one was taken by another machine), so a retried step makes one volume. The volume is
   * attached first, so two steps cannot take the same one, and the machine is placed on its host. A
   * create that placement or the decider refused gives the volume back; one whose outcome is unknown
   * (a timeout) keeps it, and the sweep at the release's end frees it if the machine never came.
   */
  private async createOnVolume(
    app: string,
    machineId: string,
    group: string,
    config: Record<string, unknown>,
    region: string,
    appConfig: AppConfig | undefined,
  ): Promise<void> {
    this.checkHeld();
    if (this.opts.fleet.machine(app, machineId)) return;
    const [mount] = mountsOf(config);
    if (!mount?.name) throw new Error(`process group ${group} mounts a volume with no name`);
    const view = this.opts.fleet.volumes;
    const usable = (v: Volume) => v.state === "created" || v.state === "extending";
    // This step's own volumes, in the order it creates them; the first not taken by another machine.
    let attempt = 0;
    let own: Volume | undefined;
    for (; ; attempt++) {
      own = view.volume(app, newVolumeId(`${app}/${ownVolumeKey(machineId, attempt)}`));
      if (!own || (usable(own) && (own.attached_machine_id ?? machineId) === machineId)) break;
    }
    const making = (v: Volume) => {
      const of = /^release-volume-([^-]+)/.exec(v.create_command_id)?.[1];
      return of !== undefined && of !== machineId && this.creating.has(of);
    };
    let volume =
      view.ofApp(app).find((v) => v.attached_machine_id === machineId && usable(v)) ??
      own ??
      view
        .ofApp(app)
        .find(
          (v) =>
            v.name === mount.name &&
            v.region === region &&
            usable(v) &&
            v.attached_machine_id === null &&
            !making(v),
        );
    if (!volume) {
      const found = this.opts.fleet.apps.get(app);
      const org = found && found.status !== "absent" ? found.orgSlug : "";
      // The [mounts] table the machine's mount was made of: the new volume's size and snapshot settings.
      const table = (appConfig?.mounts ?? []).find(
        (m) => m.source === mount.name && m.destination === mount.path,
      );
      const spec = table ? mountVolume(table) : { size_gb: DEFAULT_VOLUME_SIZE_GB };
      volume = await sendCommand<VolumeCreateRequest, VolumeCommandReply<Volume>>(
        this.opts.nc,
        subjects.volume.create,
        { command_id: ownVolumeKey(machineId, attempt), app, org, region, ...spec, name: mount.name },
        VOLUME_CREATE_TIMEOUT_MS,
      );
      this.opts.logger.info({ app, volume: volume.id, machine: machineId, group }, "release volume created");
    }
    const attach: VolumeAttachRequest = { app, volume_id: volume.id, machine_id: machineId };
    await sendCommand<VolumeAttachRequest, unknown>(this.opts.nc, subjects.volume.attach, attach);
    try {
      await placeThenCreateMachine(
        { nc: this.opts.nc, machines: this.machines, view: this.opts.fleet.machines },
        {
          app,
          machineId,
          region: volume.region,
          hostId: volume.host_id,
          config: { ...config, mounts: [{ ...mount, volume: volume.id, name: volume.name }] },
        },
      );
    } catch (err) {
      if (isDomainError(err, "already_exists")) return;
      // Refused (no room on the volume's host, a config no machine is made of): nothing was created.
      if (isDomainError(err) && !this.opts.fleet.machine(app, machineId))
        await sendCommand(this.opts.nc, subjects.volume.detach, attach).catch(() => undefined);
      throw err;
    }
    this.opts.logger.info({ app, machine: machineId, group, volume: volume.id }, "release machine created");
  }

  /**
   * Detaches the app's volumes left attached to a machine of an ended release that was never created
   * (a step cut off between its attach and its create): no later step will create that machine, and
   * the volume service frees a volume only when its machine is destroyed.
   */
  private async freeStrandedVolumes(app: string): Promise<void> {
    // Volumes attached to a machine id no machine has: usually none, and then no slot id is computed.
    const orphans = this.opts.fleet.volumes.ofApp(app).filter((v) => {
      const id = v.attached_machine_id;
      return id !== null && !this.stepping.has(id) && !this.opts.fleet.machine(app, id);
    });
    if (orphans.length === 0) return;
    const releases = (this.view.get(app)?.releases ?? []).filter(
      (r) => r.status === "succeeded" || r.status === "failed",
    );
    const slots = new Set(releases.flatMap((r) => [...slotIdsOf(r)]));
    for (const v of orphans) {
      const id = v.attached_machine_id as string;
      if (!slots.has(id)) continue;
      // Tried again at the next release's start or end; a volume service down now holds no release up.
      try {
        await sendCommand(this.opts.nc, subjects.volume.detach, { app, volume_id: v.id, machine_id: id });
        this.opts.logger.info(
          { app, volume: v.id, machine: id },
          "volume of a machine never created detached",
        );
      } catch (err) {
        this.opts.logger.warn(
          { err, app, volume: v.id, machine: id },
          "volume of a machine never created not detached yet",
        );
      }
    }
  }

  /**
   * Updates a machine of an in-place group to the release's config on the volume it has: its host
   * agent stops it and starts it again with the new image and config, on the same disk. Keyed by the
   * machine, the release it is updated to and the release carried out (a rollback's update back to
   * the release before is not the update that once brought it there).
   */
  private async update(
    app: string,
    machineId: string,
    config: Record<string, unknown> | undefined,
    /** The release being carried out (a rollback's update back to the release before is its own command). */
    carrying: number,
  ): Promise<void> {
    if (!config) throw new Error(`no machine config to update machine ${machineId} to`);
    this.checkHeld();
    const machine = this.opts.fleet.machine(app, machineId);
    if (!machine || GONE.has(machine.status)) return;
    const [current] = mountsOf(safeConfig(machine.configJson));
    const [mount] = mountsOf(config);
    if (!current?.volume || !mount)
      throw new Error(`machine ${machineId} has no volume to keep: it is replaced, not updated`);
    const updated = {
      ...config,
      mounts: [{ ...mount, volume: current.volume, name: current.name ?? mount.name }],
    };
    const release = releaseOfConfig(config);
    await handleThenWait(
      this.machines,
      this.opts.fleet.machines,
      machineAggregateId(app, machineId),
      {
        type: "UpdateMachine",
        instanceId: newInstanceId(),
        configJson: JSON.stringify(updated),
        name: machine.name,
        skipLaunch: false,
        nowMs: this.now(),
      },
      { commandId: `release-${carrying}-update-v${release}-${machineId}` },
    );
    this.opts.logger.info({ app, machine: machineId, release }, "release machine updated in place");
  }

  /** Cordons the machine, waits until the proxies have drained it (or the drain timeout), then destroys it. */
  private async destroy(app: string, machineId: string): Promise<void> {
    const machine = this.opts.fleet.machine(app, machineId);
    if (!machine || GONE.has(machine.status)) return;
    if (machine.status === "started") {
      const cordon = await this.machine(
        app,
        machineId,
        { type: "CordonMachine", nowMs: this.now() },
        "cordon",
      );
      const until = this.now() + this.opts.drainTimeoutMs;
      while (this.now() < until) {
        this.checkHeld();
        if (this.opts.board.drainStatus(app, machineId, cordon, this.now()).drained) break;
        await sleep(this.opts.drainPollMs ?? DRAIN_POLL_MS, undefined, { signal: this.abort.signal });
      }
    }
    await this.machine(app, machineId, { type: "DestroyMachine", force: true, nowMs: this.now() }, "destroy");
    this.opts.logger.info({ app, machine: machineId }, "previous machine destroyed");
  }

  private async machine(
    app: string,
    machineId: string,
    command: MachineCommand,
    verb: string,
  ): Promise<number> {
    this.checkHeld();
    try {
      const r = await handleThenWait(
        this.machines,
        this.opts.fleet.machines,
        machineAggregateId(app, machineId),
        command,
        {
          commandId: `release-${verb}-${machineId}`,
        },
      );
      return r.seq;
    } catch (err) {
      // Already cordoned or already going: what was wanted.
      if (isDomainError(err, "failed_precondition"))
        return this.opts.fleet.machines.seqOf(machineAggregateId(app, machineId));
      throw err;
    }
  }

  private async command(app: string, command: ReleaseCommand, commandId: string): Promise<void> {
    if (command.type === "SucceedRelease" || command.type === "FailRelease") {
      const sweep = setTimeout(() => {
        this.sweepReleaseCommands(app).catch((err: unknown) =>
          this.opts.logger.warn({ err, app }, "release_command machines not removed yet"),
        );
      }, RELEASE_COMMAND_KEEP_MS);
      sweep.unref();
    }
    this.checkHeld();
    try {
      await handleThenWait(this.releases, this.view, app, command, { commandId });
    } catch (err) {
      // Ended meanwhile (another leader, a client): nothing left to do.
      if (!isDomainError(err, "failed_precondition")) throw err;
    }
  }

  private checkHeld(): void {
    if (this.abort.signal.aborted || !this.opts.isHeld())
      throw new Error("the scheduler lease is no longer held");
  }

  /** The app's machines that are not destroyed, as a rollout sees them. */
  private live(app: string): RolloutMachine[] {
    return this.rolloutMachines(app, -1, Number.POSITIVE_INFINITY);
  }

  private taken(app: string): Set<string> {
    return new Set(this.opts.fleet.machines.ofApp(app).map((e) => e.state.machineId));
  }

  private rolloutMachines(
    app: string,
    release: number,
    waitMs: number,
    /** The release being rolled out: its new machines are healthy once their machine_checks have passed too. */
    checking?: { release: Release; config: AppConfig },
  ): RolloutMachine[] {
    const now = this.now();
    return this.opts.fleet.machines
      .ofApp(app)
      .filter((e) => !GONE.has(e.state.status))
      .map(({ state }) => {
        const metadata = safeMetadata(state.configJson);
        const [mount] = mountsOf(safeConfig(state.configJson));
        const version = Number(metadata.hangar_release) || 0;
        let why = unhealthy(state);
        let failure: string | undefined;
        if (checking && version === release && why === undefined) {
          const checks = this.machineChecks(app, checking.release, checking.config, state, waitMs);
          failure = checks?.failure;
          why = checks?.pending;
        }
        // The wait counts until a machine is first healthy; a later blip waits afresh.
        if (why === undefined) this.firstSeen.delete(state.machineId);
        if (version === release && why !== undefined && failure === undefined) {
          if (state.status === "failed")
            failure = `machine ${state.machineId} failed${state.failure ? `: ${state.failure}` : ""}`;
          else {
            const first = this.firstSeen.get(state.machineId);
            const seen = first?.release === version ? first.since : now;
            this.firstSeen.set(state.machineId, { release: version, since: seen });
            if (now - seen > waitMs) failure = `${why} after ${Math.round(waitMs / 1000)} s`;
          }
        }
        return {
          id: state.machineId,
          // A release's command and test machines are no group's: the rollout leaves them alone.
          group: metadata.hangar_release_command === undefined ? metadata.fly_process_group : undefined,
          release: version,
          healthy: why === undefined && failure === undefined,
          failure,
          region: state.region,
          volume: mount?.volume ?? undefined,
          volumeName: mount?.name ?? undefined,
        };
      });
  }

  /**
   * Where a new machine's machine_checks stand (flyctl's runTestMachines): each check runs once in a
   * machine of its own (its id from the release, the machine and the check, so a new leader finds it)
   * with FLY_TEST_MACHINE_IP set to the machine's address. Undefined once every one has exited 0 (or
   * the machine's group has none); `pending` while one is starting or running; `failure` when one
   * exited non-zero, could not start, or ran past the wait timeout (it is then destroyed): the
   * rollout fails and the previous release comes back. Test machines are swept with the release's
   * command machines once the release has ended.
   */
  private machineChecks(
    app: string,
    release: Release,
    config: AppConfig,
    tested: ExistingMachine,
    waitMs: number,
  ): { pending?: string; failure?: string } | undefined {
    const group = safeMetadata(tested.configJson).fly_process_group ?? "";
    const checks = machineChecksFor(config, group);
    for (const [i, check] of checks.entries()) {
      const name = `machine check ${i + 1} of ${checks.length} (${(check.command ?? []).join(" ")}) on machine ${tested.machineId}`;
      const id = newMachineId(`${release.releaseId}/machine-check/${tested.machineId}/${i}`);
      const m = this.opts.fleet.machine(app, id);
      if (m && (m.status === "stopped" || GONE.has(m.status)) && m.lastExitCode === 0) {
        this.firstSeen.delete(id);
        continue;
      }
      const seen = this.firstSeen.get(id)?.since ?? this.now();
      this.firstSeen.set(id, { release: release.version, since: seen });
      const late = this.now() - seen > waitMs;
      if (!m && !late) {
        if (this.stepping.has(id)) return { pending: `${name} is being created` };
        let run: Record<string, unknown>;
        try {
          const base = testMachineConfig(config, check, {
            config: JSON.parse(tested.configJson || "{}"),
            privateIp: tested.privateIpv6 || tested.privateIp,
          });
          run = {
            ...base,
            metadata: {
              ...base.metadata,
              hangar_release_command: String(release.version),
              hangar_machine_check: tested.machineId,
            },
          };
        } catch (err) {
          return { failure: `${name}: ${err instanceof Error ? err.message : String(err)}` };
        }
        this.launchOneOff(app, release, id, run, {
          span: "machine check",
          what: "machine check",
          group: TEST_MACHINE_GROUP,
          region: tested.region,
        });
        return { pending: `${name} is being created` };
      }
      const end = oneOffEnd(m, late, waitMs, this.commandErrors.get(id));
      if (!end) return { pending: `${name} is ${m?.status}` };
      // One still running past the wait is stopped for good.
      if (m && !GONE.has(m.status) && m.status !== "stopped" && m.status !== "failed")
        void this.machine(
          app,
          id,
          { type: "DestroyMachine", force: true, nowMs: this.now() },
          "destroy",
        ).catch(() => undefined);
      return { failure: `${name} ${end.reason || `exited with code ${end.exitCode}`}` };
    }
    return undefined;
  }

  /**
   * Creates a one-off machine of the release (a release_command's or seed_command's, a machine
   * check's) in the release's trace, in the background: one create at a time per machine
   * (`stepping`), and a create that failed is remembered for the timeout's message (`commandErrors`).
   */
  private launchOneOff(
    app: string,
    release: Release,
    machineId: string,
    config: Record<string, unknown>,
    opts: { span: string; what: string; group?: string; region?: string },
  ): void {
    this.stepping.add(machineId);
    void withSpan(
      opts.span,
      {
        attributes: { "hangar.app": app, "hangar.machine_id": machineId, "hangar.release": release.version },
      },
      () => this.create(app, machineId, opts.group ?? "", config, opts.region),
      this.traces.get(`${app}#${release.version}`) ?? ROOT_CONTEXT,
    )
      .catch((err: unknown) => {
        this.commandErrors.set(machineId, err instanceof Error ? err.message : String(err));
        this.opts.logger.warn({ err, app, machine: machineId }, `${opts.what} not created yet`);
      })
      .finally(() => this.stepping.delete(machineId));
  }

  /** The region of a new machine: the group's (or the app's) machines', else the platform's default. */
  private regionOf(app: string, group: string): string {
    const machines = this.opts.fleet.machines.ofApp(app).filter((e) => !GONE.has(e.state.status));
    const same = machines.find((e) => safeMetadata(e.state.configJson).fly_process_group === group);
    return (same ?? machines[0])?.state.region || this.opts.defaultRegion;
  }
}

/** Whether the release's release_command or seed_command has started and not ended. */
function commandRunning(r: Release): boolean {
  return [r.releaseCommand, r.seedCommand].some(
    (run) => run.machineId !== "" && run.exitCode === null && run.reason === "",
  );
}

/**
 * How a one-off machine's run ended (a release_command's, a machine check's), undefined while it may
 * still end well: its exit code, or -1 and what went wrong, worded to follow what ran.
 */
export function oneOffEnd(
  m: ExistingMachine | undefined,
  late: boolean,
  timeoutMs: number,
  createError?: string,
): { exitCode: number; reason: string } | undefined {
  const within = `within ${Math.round(timeoutMs / 1000)} s`;
  if (!m)
    return late
      ? { exitCode: -1, reason: `could not be started ${within}${createError ? `: ${createError}` : ""}` }
      : undefined;
  if (m.status === "failed") return { exitCode: -1, reason: `could not start: ${m.failure}` };
  if ((m.status === "stopped" || GONE.has(m.status)) && m.lastExitCode !== null)
    return { exitCode: m.lastExitCode, reason: "" };
  if (GONE.has(m.status)) return { exitCode: -1, reason: "was destroyed before it exited" };
  if (late) return { exitCode: -1, reason: `did not exit ${within}` };
  return undefined;
}

/** The region of a group's slot, as the release recorded its groups' spread; undefined: the orchestrator's default. */
function slotRegion(groups: ReleaseGroup[], group: string, slot: number): string | undefined {
  const regions = groups.find((g) => g.group === group)?.regions ?? [];
  return regions.length > 0 ? regions[slot % regions.length] : undefined;
}

function appConfigOf(release: Release): AppConfig | undefined {
  try {
    return JSON.parse(release.configJson || "{}") as AppConfig;
  } catch {
    return undefined;
  }
}

function waitOf(release: Release): number {
  return release.waitTimeoutMs > 0 ? release.waitTimeoutMs : DEFAULT_RELEASE_WAIT_MS;
}

/** Why the orchestrator cannot carry the release out: a config no machine can be made of, or two mounts in a group. */
function configProblem(config: AppConfig, image: string): string | undefined {
  const parsed = ReleaseConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `the release's config is not an app config: ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`;
  }
  try {
    for (const group of processGroups(config)) machineConfigFromApp(config, image, { processGroup: group });
  } catch (err) {
    return `the release's config gives no machine config: ${err instanceof Error ? err.message : String(err)}`;
  }
  for (const group of processGroups(config)) {
    const mounts = mountsOf(
      machineConfigFromApp(config, image, { processGroup: group }) as Record<string, unknown>,
    );
    if (mounts.length > 1)
      return `process group ${group} has ${mounts.length} [mounts]; a machine mounts one volume (give each [mounts] its own processes)`;
  }
  return undefined;
}

/** A machine's mount (Fly's MachineMount): by volume id once attached, by name as a release's config gives it. */
interface MachineMount {
  volume?: string | null;
  name?: string | null;
  path: string;
  [key: string]: unknown;
}

/** A machine config's mounts (by volume id once attached, by name as a release's config gives them). */
function mountsOf(config: Record<string, unknown>): MachineMount[] {
  const { mounts } = config as { mounts?: MachineMount[] | null };
  return Array.isArray(mounts) ? mounts : [];
}

/** A machine's config as recorded, or {} when it is not JSON. */
function safeConfig(configJson: string): Record<string, unknown> {
  try {
    return JSON.parse(configJson || "{}") as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** A machine's guest as it runs: its config's, Fly's defaults for what that leaves out. */
function guestOf(configJson: string): MachineGuest {
  let guest: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(configJson) as { guest?: unknown };
    if (parsed.guest && typeof parsed.guest === "object") guest = parsed.guest as Record<string, unknown>;
  } catch {
    // A config that does not parse runs with the defaults.
  }
  return { ...GUEST_DEFAULTS, ...guest } as MachineGuest;
}

type MachineGuest = Parameters<typeof releaseCommandGuest>[1][number];

function safeMetadata(configJson: string): Record<string, string | undefined> {
  try {
    return machineMetadataOf(configJson);
  } catch {
    return {};
  }
}

/** The release a machine config belongs to (its metadata's hangar_release), or "". */
function releaseOfConfig(config: Record<string, unknown>): string {
  const { metadata } = config as { metadata?: Record<string, unknown> | null };
  const release = metadata?.hangar_release;
  return typeof release === "string" ? release : "";
}

/** Why a machine is not healthy: not started, a check not passing, or checks not reported yet. */
export function unhealthy(m: ExistingMachine): string | undefined {
  if (m.status !== "started") return `machine ${m.machineId} is ${m.status}`;
  for (const [name, c] of Object.entries(m.checks)) {
    if (c.status !== "passing")
      return `check ${name} of machine ${m.machineId} is ${c.status}${c.output ? `: ${c.output.trim().slice(0, 200)}` : ""}`;
  }
  const expected = expectedChecks(m.configJson);
  const reported = Object.keys(m.checks).length;
  if (reported < expected) return `machine ${m.machineId} has reported ${reported} of its ${expected} checks`;
  return undefined;
}

function expectedChecks(configJson: string): number {
  try {
    const c = JSON.parse(configJson || "{}") as {
      checks?: Record<string, unknown> | null;
      services?: { checks?: unknown[] | null }[] | null;
    };
    return (
      Object.keys(c.checks ?? {}).length + (c.services ?? []).reduce((n, s) => n + (s.checks?.length ?? 0), 0)
    );
  } catch {
    return 0;
  }
}

export type { ReleaseGroup };
