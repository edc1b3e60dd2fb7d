import { randomUUID } from "node:crypto";
import {
  DEFAULT_SNAPSHOT_RETENTION,
  expiredSnapshots,
  isVolumeId,
  newSnapshotId,
  newVolumeId,
  snapshotRetentionProblem,
  VOLUME_SNAPSHOTS_BUCKET,
  type Volume,
  type VolumeCommand,
  type VolumeEvent,
  type VolumeSnapshot,
  type VolumeState,
  volumeAggregateId,
  volumeDecider,
  volumeIsUsable,
  volumeNameProblem,
  volumeSizeProblem,
  volumesStream,
} from "@hangar/domain";
import { CommandHandler, type DomainErrorCode, type EventStore, isDomainErrorCode } from "@hangar/eventstore";
import { openObjectBucket } from "@hangar/oci";
import {
  CommandError,
  deleteSnapshotObject,
  type HostVolumeCreateRequest,
  type HostVolumeExtendRequest,
  type HostVolumeSnapshotReply,
  type HostVolumeSnapshotRequest,
  handleThenWait,
  KeyedSerial,
  MachinesView,
  type PlaceResult,
  type PlaceVolumeRequest,
  sendCommand,
  serveCommands,
  subjects,
  type VolumeAttachRequest,
  type VolumeCommandReply,
  type VolumeCreateRequest,
  type VolumeExtendRequest,
  type VolumeRef,
  type VolumeReply,
  type VolumeSnapshotRequest,
  VolumesView,
  type VolumeUpdateRequest,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { ObjectStore } from "@nats-io/obj";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

const GIB = 1024 ** 3;

export interface VolumeServiceOptions {
  nc: NatsConnection;
  store: EventStore;
  logger: Logger;
  registry?: Registry;
  /** Scheduled snapshots and retention pruning run this often (default a day). */
  snapshotIntervalMs?: number;
  /** How long a host may take to make, grow or delete a disk (default 300 s). */
  hostTimeoutMs?: number;
  /** How long a host may take to snapshot a volume (default 1800 s). */
  snapshotTimeoutMs?: number;
  /** How often unfinished work is taken up again (default 30 s). */
  retryIntervalMs?: number;
  /** The snapshots' Object Store bucket (default VOLUME_SNAPSHOTS). */
  bucket?: string;
  /** Replicas of the bucket when this service creates it (HANGAR_STREAM_REPLICAS; default 1). */
  replicas?: number;
}

/** A failure's message without the error class. */
function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The platform code a failed host command is answered with: its own, or `internal`. */
function codeOf(err: unknown): DomainErrorCode {
  const code = (err as { code?: unknown })?.code;
  return isDomainErrorCode(code) ? code : "internal";
}

function refuse(message: string, code: DomainErrorCode = "invalid_argument"): never {
  throw new CommandError(message, code);
}

/**
 * The volume service: owns the VOLUMES stream. Every disk change is recorded as requested before its
 * host agent is asked and as done (or failed) after it answered, so a disk file or snapshot object
 * always has an event that accounts for it, and what a crash left half-way is found in the stream
 * and finished (or recorded failed) by `resume`. Commands on one volume run one at a time here;
 * the decider's expected sequence keeps several instances consistent.
 */
export class VolumeService {
  private readonly handler: CommandHandler<VolumeState, VolumeCommand, VolumeEvent>;
  /** The work in flight per volume id: the next command on that volume waits for it. */
  private readonly locks = new KeyedSerial();
  /** When a periodic resume first saw each unfinished step that no command here was doing. */
  private readonly seenUnfinished = new Map<string, number>();
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private readonly snapshotSeconds: Histogram;
  private readonly hostFailures: Counter;

  private constructor(
    private readonly opts: VolumeServiceOptions,
    private readonly volumes: VolumesView,
    private readonly machines: MachinesView,
    private readonly snapshots: ObjectStore,
  ) {
    this.handler = new CommandHandler(opts.store, volumesStream, volumeDecider);
    const registers = opts.registry ? [opts.registry] : [];
    this.snapshotSeconds = new Histogram({
      name: "hangar_volume_snapshot_seconds",
      help: "How long a volume snapshot took, asked to stored",
      labelNames: ["type"],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    this.hostFailures = new Counter({
      name: "hangar_volume_host_failures_total",
      help: "Disk operations a host agent refused or did not answer",
      labelNames: ["op"],
      registers,
    });
    const service = this;
    new Gauge({
      name: "hangar_volumes",
      help: "Volumes by state",
      labelNames: ["state"],
      registers,
      collect() {
        const counts = new Map<string, number>();
        for (const v of service.volumes.all()) counts.set(v.state, (counts.get(v.state) ?? 0) + 1);
        this.reset();
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
  }

  /** Rebuilds the volumes and machines from their streams, serves the commands, then resumes unfinished work. */
  static async start(opts: VolumeServiceOptions): Promise<VolumeService> {
    const snapshots = await openObjectBucket(opts.nc, opts.bucket ?? VOLUME_SNAPSHOTS_BUCKET, {
      replicas: opts.replicas ?? 1,
    });
    const volumes = VolumesView.create(opts.store);
    const machines = MachinesView.create(opts.store);
    const self = new VolumeService(opts, volumes, machines, snapshots);
    machines.subscribe((c) => {
      if (c.live && c.state.status === "destroyed" && c.previous.status !== "destroyed") {
        void self.detachAllOf(c.state.app, c.state.machineId);
      }
    });
    await Promise.all([volumes.follow(), machines.follow()]);
    await Promise.all([volumes.caughtUp, machines.caughtUp]);
    self.listen();
    // The subscriptions are at the server before start resolves: a command sent from another
    // connection right after it would otherwise find no responder (the int test's CI run did).
    await opts.nc.flush();
    // In the background: the service answers (and is healthy) while hosts are asked.
    void self.resume({ atStart: true });
    return self;
  }

  private listen(): void {
    const { nc, logger } = this.opts;
    // Each answer has the volume's sequence, which the asker waits for to read its own write.
    const serve = <Q extends { app: string; volume_id?: string }, R extends { id: string }>(
      subject: string,
      handle: (req: Q) => Promise<R>,
    ) =>
      serveCommands<Q, VolumeCommandReply<R>>(
        nc,
        subject,
        "volume",
        async (req) => {
          const reply = await handle(req);
          return { ...reply, seq: this.volumes.seqOf(req.app, req.volume_id ?? reply.id) };
        },
        (err) => logger.error({ err, subject }, "volume command failed"),
      );
    this.subs.push(
      serve(subjects.volume.create, (req: VolumeCreateRequest) => this.create(req)),
      serve(subjects.volume.update, (req: VolumeUpdateRequest) => this.update(req)),
      serve(subjects.volume.extend, (req: VolumeExtendRequest) => this.extend(req)),
      serveCommands<VolumeExtendRequest, VolumeReply>(
        nc,
        subjects.volumeAutoExtendAll,
        "volume",
        (req, subject) => this.autoExtend(subject.slice(subjects.volumeAutoExtend("").length), req),
        (err) => logger.error({ err, subject: subjects.volumeAutoExtendAll }, "volume command failed"),
      ),
      serve(subjects.volume.destroy, (req: VolumeRef) => this.destroy(req)),
      serve(subjects.volume.snapshot, (req: VolumeSnapshotRequest) => this.snapshot(req)),
      serve(subjects.volume.attach, (req: VolumeAttachRequest) => this.attach(req)),
      serve(subjects.volume.detach, (req: VolumeAttachRequest) => this.detach(req)),
    );
    const every = (ms: number, what: string, run: () => Promise<unknown>) => {
      const timer = setInterval(() => {
        run().catch((err: unknown) => logger.error({ err }, `${what} failed`));
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.opts.retryIntervalMs ?? 30_000, "resume", () => this.resume({ atStart: false }));
    // Checked more often than the interval: a service restarted more often than that would otherwise
    // never take one. A volume snapshotted within the interval is skipped, so a check is cheap.
    every(Math.min(this.snapshotInterval, 900_000), "scheduled snapshots", () => this.scheduledPass());
  }

  private get snapshotInterval(): number {
    return this.opts.snapshotIntervalMs ?? 86_400_000;
  }

  /** Runs `work` after the work in flight on the same volume. */
  private serial<T>(volumeId: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(volumeId, work);
  }

  /** Decides and appends a command on a volume, and waits until the view shows it. */
  private async handle(
    app: string,
    volumeId: string,
    command: VolumeCommand,
    commandId: string,
  ): Promise<Volume> {
    const res = await handleThenWait(this.handler, this.volumes, volumeAggregateId(app, volumeId), command, {
      commandId,
    });
    if (res.state === null) throw new CommandError(`volume ${volumeId} not found`, "not_found");
    return res.state;
  }

  /**
   * The app's volume, or `not_found`; a destroyed volume is not found either. A request without an
   * app or a volume id of the domain's shape is `invalid_argument`, before anything is looked up.
   */
  private existing(app: string, volumeId: string): Volume {
    if (typeof app !== "string" || !app || typeof volumeId !== "string" || !isVolumeId(volumeId))
      refuse(
        `a volume command needs app and volume_id (such as vol_0123456789abcdef), not ${JSON.stringify({ app, volume_id: volumeId })}`,
      );
    const v = this.volumes.volume(app, volumeId);
    if (!v || v.state === "destroyed") refuse(`volume ${volumeId} not found`, "not_found");
    return v;
  }

  /** Refuses (with the decider's own words) a command the volume's current state does not allow. */
  private check(v: Volume, command: VolumeCommand): void {
    volumeDecider.decide(command, v);
  }

  /**
   * Creates a volume: places its disk room, records the create with its host, asks the host agent
   * to make the disk, records it made. The id derives from the command id, so the same create asked
   * again (or after a crash) names the same volume and answers with it.
   */
  async create(req: VolumeCreateRequest): Promise<Volume> {
    if (!req.command_id || !req.app || !req.org || !req.region)
      refuse("a volume create needs command_id, app, org, name, region and size_gb");
    const nameProblem = volumeNameProblem(req.name ?? "");
    if (nameProblem) refuse(nameProblem);
    const retention = req.snapshot_retention ?? DEFAULT_SNAPSHOT_RETENTION;
    const retentionProblem = snapshotRetentionProblem(retention);
    if (retentionProblem) refuse(retentionProblem);
    const volumeId = newVolumeId(`${req.app}/${req.command_id}`);
    if (this.volumes.volume(req.app, volumeId)) {
      return this.serial(volumeId, () => this.finishCreate(req.app, volumeId));
    }
    // An asked size is checked before a fork takes its snapshot.
    const askedProblem = req.size_gb ? volumeSizeProblem(req.size_gb) : undefined;
    if (askedProblem) refuse(askedProblem);
    const source = await this.sourceOf(req);
    const sizeGb = req.size_gb || source?.minSizeGb || 0;
    const sizeProblem = volumeSizeProblem(sizeGb);
    if (sizeProblem) refuse(sizeProblem);
    if (source && sizeGb < source.minSizeGb)
      refuse(
        `size_gb ${sizeGb} is smaller than the ${source.minSizeGb} GB the snapshot ${source.snapshotId} holds`,
      );
    const avoid = req.require_unique_zone
      ? this.volumes
          .ofApp(req.app)
          .filter((v) => v.name === req.name && v.state !== "destroyed" && v.state !== "failed")
          .map((v) => v.host_id)
      : [];
    const placed = await sendCommand<PlaceVolumeRequest, PlaceResult>(this.opts.nc, subjects.placeVolume, {
      volume_id: volumeId,
      app: req.app,
      region: req.region,
      size_gb: sizeGb,
      ...(avoid.length > 0 ? { avoid_host_ids: [...new Set(avoid)] } : {}),
    });
    return this.serial(volumeId, async () => {
      await this.handle(
        req.app,
        volumeId,
        {
          type: "CreateVolume",
          volumeId,
          app: req.app,
          org: req.org,
          name: req.name,
          region: placed.region,
          hostId: placed.host_id,
          sizeGb,
          snapshotRetention: retention,
          autoBackupEnabled: req.auto_backup_enabled ?? true,
          ...(source ? { sourceSnapshotId: source.snapshotId, sourceVolumeId: source.volumeId } : {}),
          commandId: req.command_id,
          at: new Date().toISOString(),
        },
        `create-${req.app}-${req.command_id}`,
      );
      return this.finishCreate(req.app, volumeId);
    });
  }

  /**
   * Where a new volume's data comes from: a snapshot of one of the app's volumes, or a fork (a
   * snapshot of the source volume taken now, with an id derived from the create's command id, so a
   * resumed fork reuses it); undefined for an empty volume.
   */
  private async sourceOf(
    req: VolumeCreateRequest,
  ): Promise<{ volumeId: string; snapshotId: string; minSizeGb: number } | undefined> {
    if (req.snapshot_id) {
      const found = this.volumes.snapshot(req.app, req.snapshot_id);
      if (!found) refuse(`snapshot ${req.snapshot_id} not found in app ${req.app}`, "not_found");
      if (found.snapshot.state !== "created")
        refuse(
          `snapshot ${req.snapshot_id} is ${found.snapshot.state}; only a created snapshot restores`,
          "failed_precondition",
        );
      return {
        volumeId: found.volume.id,
        snapshotId: found.snapshot.id,
        minSizeGb: Math.max(1, Math.ceil(found.snapshot.size / GIB)),
      };
    }
    if (req.source_volume_id) {
      const source = this.existing(req.app, req.source_volume_id);
      const snapshot = await this.snapshot(
        { app: req.app, volume_id: source.id, type: "on_demand" },
        newSnapshotId(`${req.app}/${req.command_id}/fork`),
      );
      return { volumeId: source.id, snapshotId: snapshot.id, minSizeGb: source.size_gb };
    }
    return undefined;
  }

  /** Asks the host to make a "creating" volume's disk and records the answer; call under the volume's lock. */
  private async finishCreate(app: string, volumeId: string): Promise<Volume> {
    const v = this.existing(app, volumeId);
    if (v.state === "failed")
      refuse(`volume ${volumeId} could not be created: ${v.error}`, "failed_precondition");
    if (v.state !== "creating") return v;
    const request: HostVolumeCreateRequest = {
      volume_id: v.id,
      app: v.app,
      size_gb: v.size_gb,
      ...(v.source_snapshot_id && v.source_volume_id
        ? { snapshot: { volume_id: v.source_volume_id, snapshot_id: v.source_snapshot_id } }
        : {}),
    };
    try {
      await this.askHost(v.host_id, "create", request, this.opts.hostTimeoutMs ?? 300_000);
    } catch (err) {
      const reason = `host ${v.host_id} did not make the disk: ${messageOf(err)}`;
      await this.handle(app, volumeId, { type: "FailCreate", reason }, `create-failed-${volumeId}`);
      // The host may have finished after the answer was given up on: the disk must not outlive the event.
      await this.deleteDisk(v).catch(() => undefined);
      throw new CommandError(reason, codeOf(err));
    }
    return this.handle(app, volumeId, { type: "MarkCreated" }, `created-${volumeId}`);
  }

  /** Sends one of the host agent's volume commands. */
  private async askHost<Q, R>(hostId: string, op: string, request: Q, timeoutMs: number): Promise<R> {
    try {
      return await sendCommand<Q, R>(
        this.opts.nc,
        subjects.hostCommand(hostId, `volume.${op}`),
        request,
        timeoutMs,
      );
    } catch (err) {
      this.hostFailures.inc({ op });
      throw err;
    }
  }

  private async deleteDisk(v: Volume): Promise<void> {
    await this.askHost(v.host_id, "delete", { volume_id: v.id }, this.opts.hostTimeoutMs ?? 300_000);
  }

  /** Changes snapshot_retention and scheduled snapshots (auto_backup_enabled). */
  async update(req: VolumeUpdateRequest): Promise<Volume> {
    this.existing(req.app, req.volume_id);
    if (req.snapshot_retention !== undefined && typeof req.snapshot_retention !== "number")
      refuse("snapshot_retention must be a number of days");
    if (req.auto_backup_enabled !== undefined && typeof req.auto_backup_enabled !== "boolean")
      refuse("auto_backup_enabled must be true or false");
    return this.serial(req.volume_id, () =>
      this.handle(
        req.app,
        req.volume_id,
        {
          type: "UpdateVolume",
          ...(req.snapshot_retention === undefined ? {} : { snapshotRetention: req.snapshot_retention }),
          ...(req.auto_backup_enabled === undefined ? {} : { autoBackupEnabled: req.auto_backup_enabled }),
        },
        `update-${randomUUID()}`,
      ),
    );
  }

  /**
   * A host agent's auto-extend (`cmd.volume.auto_extend.<host_id>`): only of a volume on that host
   * and attached to a machine, so a host agent's credentials grow no other host's volumes.
   */
  autoExtend(hostId: string, req: VolumeExtendRequest): Promise<VolumeReply> {
    return this.extend(req, hostId);
  }

  /** Refuses an auto-extend from `hostId` of a volume not on that host or not attached. */
  private checkAutoExtend(v: Volume, hostId: string): void {
    if (v.host_id !== hostId) refuse(`volume ${v.id} not found on host ${hostId}`, "not_found");
    if (!v.attached_machine_id)
      refuse(
        `volume ${v.id} is attached to no machine: only a mounted volume auto-extends`,
        "failed_precondition",
      );
  }

  /**
   * Grows a volume (never shrinks): its host's disk room first, then the disk, online when mounted.
   * `fromHost`: asked by that host's agent (an auto-extend), checked with checkAutoExtend.
   */
  async extend(req: VolumeExtendRequest, fromHost?: string): Promise<VolumeReply> {
    if (!req.app || !req.volume_id || typeof req.size_gb !== "number")
      refuse("a volume extend needs app, volume_id and size_gb (a number)");
    const found = this.existing(req.app, req.volume_id);
    if (fromHost !== undefined) this.checkAutoExtend(found, fromHost);
    return this.serial(req.volume_id, async () => {
      const v = this.existing(req.app, req.volume_id);
      if (fromHost !== undefined) this.checkAutoExtend(v, fromHost);
      this.check(v, { type: "RequestExtend", sizeGb: req.size_gb });
      await sendCommand<PlaceVolumeRequest, PlaceResult>(this.opts.nc, subjects.placeVolume, {
        volume_id: v.id,
        app: v.app,
        region: v.region,
        size_gb: req.size_gb,
        host_id: v.host_id,
      });
      await this.handle(
        v.app,
        v.id,
        { type: "RequestExtend", sizeGb: req.size_gb },
        `extend-${randomUUID()}`,
      );
      return this.finishExtend(v.app, v.id);
    });
  }

  /** Asks the host to grow an "extending" volume and records the answer; call under the volume's lock. */
  private async finishExtend(app: string, volumeId: string): Promise<VolumeReply> {
    const v = this.existing(app, volumeId);
    const sizeGb = v.extending_to_gb;
    if (v.state !== "extending" || sizeGb === undefined) return { ...v, needs_restart: false };
    let reply: { needs_restart?: boolean };
    try {
      reply = await this.askHost<HostVolumeExtendRequest, { needs_restart?: boolean }>(
        v.host_id,
        "extend",
        { volume_id: v.id, size_gb: sizeGb },
        this.opts.hostTimeoutMs ?? 300_000,
      );
    } catch (err) {
      const reason = `host ${v.host_id} did not grow the disk: ${messageOf(err)}`;
      await this.handle(
        app,
        volumeId,
        { type: "FailExtend", sizeGb, reason },
        `extend-failed-${randomUUID()}`,
      );
      throw new CommandError(reason, codeOf(err));
    }
    const done = await this.handle(
      app,
      volumeId,
      { type: "CompleteExtend", sizeGb },
      `extended-${randomUUID()}`,
    );
    return { ...done, needs_restart: reply.needs_restart === true };
  }

  /**
   * Destroys a volume that no machine holds: recorded as destroying, its disk deleted by its host,
   * then destroyed (placement then frees its room). A host that does not delete it now leaves it
   * "destroying", finished by `resume`.
   */
  async destroy(req: VolumeRef): Promise<Volume> {
    this.existing(req.app, req.volume_id);
    return this.serial(req.volume_id, async () => {
      await this.handle(req.app, req.volume_id, { type: "RequestDestroy" }, `destroy-${req.volume_id}`);
      return this.finishDestroy(req.app, req.volume_id);
    });
  }

  private async finishDestroy(app: string, volumeId: string): Promise<Volume> {
    const v = this.volumes.volume(app, volumeId);
    if (!v) refuse(`volume ${volumeId} not found`, "not_found");
    if (v.state !== "destroying") return v;
    try {
      await this.deleteDisk(v);
    } catch (err) {
      this.opts.logger.warn(
        { err, volume_id: volumeId, host_id: v.host_id },
        "disk not deleted yet; tried again later",
      );
      return v;
    }
    return this.handle(app, volumeId, { type: "CompleteDestroy" }, `destroyed-${volumeId}`);
  }

  /**
   * Takes a snapshot: recorded as started, stored by the host agent (frozen if mounted, zstd, in the
   * object store), recorded completed, or recorded failed with the host's reason (and then refused
   * with it). `snapshotId` is given for snapshots that must be taken once (forks, scheduled ones).
   */
  async snapshot(req: VolumeSnapshotRequest, snapshotId = newSnapshotId()): Promise<VolumeSnapshot> {
    this.existing(req.app, req.volume_id);
    if (req.type !== undefined && req.type !== "on_demand" && req.type !== "scheduled")
      refuse(`a snapshot's type is on_demand or scheduled, not ${JSON.stringify(req.type)}`);
    return this.serial(req.volume_id, async () => {
      await this.handle(
        req.app,
        req.volume_id,
        {
          type: "StartSnapshot",
          snapshotId,
          snapshotType: req.type ?? "on_demand",
          at: new Date().toISOString(),
        },
        `snapshot-${snapshotId}`,
      );
      return this.finishSnapshot(req.app, req.volume_id, snapshotId);
    });
  }

  /** Asks the host to store a started snapshot and records the answer; call under the volume's lock. */
  private async finishSnapshot(app: string, volumeId: string, snapshotId: string): Promise<VolumeSnapshot> {
    const v = this.existing(app, volumeId);
    const s = v.snapshots.find((x) => x.id === snapshotId);
    if (!s) return refuse(`snapshot ${snapshotId} not found`, "not_found");
    if (s.state === "failed")
      refuse(`snapshot ${snapshotId} of volume ${volumeId} failed: ${s.error}`, "failed_precondition");
    if (s.state === "created") return s;
    const started = Date.now();
    let reply: HostVolumeSnapshotReply;
    try {
      reply = await this.askHost<HostVolumeSnapshotRequest, HostVolumeSnapshotReply>(
        v.host_id,
        "snapshot",
        { volume_id: volumeId, snapshot_id: snapshotId },
        this.opts.snapshotTimeoutMs ?? 1_800_000,
      );
    } catch (err) {
      const reason = `host ${v.host_id}: ${messageOf(err)}`;
      // A late host may still store it: no object may outlive the event that says it failed.
      await this.deleteSnapshotObject(volumeId, snapshotId).catch(() => undefined);
      await this.handle(
        app,
        volumeId,
        { type: "FailSnapshot", snapshotId, reason },
        `snapshot-failed-${snapshotId}`,
      );
      throw new CommandError(`snapshot ${snapshotId} of volume ${volumeId} failed: ${reason}`, codeOf(err));
    }
    const done = await this.handle(
      app,
      volumeId,
      {
        type: "CompleteSnapshot",
        snapshotId,
        size: reply.size,
        storedSize: reply.stored_size,
        digest: reply.digest,
        freezeMs: reply.freeze_ms,
      },
      `snapshot-done-${snapshotId}`,
    );
    this.snapshotSeconds.observe({ type: s.type }, (Date.now() - started) / 1000);
    return (
      done.snapshots.find((x) => x.id === snapshotId) ??
      refuse(`snapshot ${snapshotId} not found`, "not_found")
    );
  }

  private deleteSnapshotObject(volumeId: string, snapshotId: string): Promise<void> {
    return deleteSnapshotObject(this.snapshots, volumeId, snapshotId);
  }

  /** Attaches a volume to a machine: `conflict` when another machine holds it; the same machine again is a no-op. */
  async attach(req: VolumeAttachRequest): Promise<Volume> {
    if (typeof req.machine_id !== "string" || !req.machine_id) refuse("attach needs a machine_id");
    this.existing(req.app, req.volume_id);
    return this.serial(req.volume_id, () =>
      this.handle(
        req.app,
        req.volume_id,
        { type: "AttachVolume", machineId: req.machine_id },
        `attach-${randomUUID()}`,
      ),
    );
  }

  /** Detaches a volume from a machine; nothing when that machine does not hold it. */
  async detach(req: VolumeAttachRequest): Promise<Volume> {
    if (typeof req.machine_id !== "string" || !req.machine_id) refuse("detach needs a machine_id");
    this.existing(req.app, req.volume_id);
    return this.serial(req.volume_id, () =>
      this.detachFrom(req.app, req.volume_id, req.machine_id, "requested"),
    );
  }

  private detachFrom(app: string, volumeId: string, machineId: string, reason: string): Promise<Volume> {
    return this.handle(app, volumeId, { type: "DetachVolume", machineId, reason }, `detach-${randomUUID()}`);
  }

  /** The reactor: a destroyed machine lets go of its volumes. */
  private async detachAllOf(app: string, machineId: string): Promise<void> {
    for (const v of this.volumes.ofApp(app)) {
      if (v.attached_machine_id !== machineId) continue;
      await this.serial(v.id, () => this.detachFrom(app, v.id, machineId, "machine-destroyed")).catch(
        (err: unknown) =>
          this.opts.logger.error(
            { err, volume_id: v.id, machine_id: machineId },
            "detach of a destroyed machine's volume failed",
          ),
      );
    }
  }

  /**
   * Takes up what the stream shows unfinished: creates, extends and destroys asked of a host that
   * never answered (a restart half-way), snapshots in flight, and volumes still attached to a
   * destroyed machine. The hosts' commands are idempotent, so asking again is safe; a host that
   * refuses makes a create or snapshot recorded failed. Work in flight here is left alone. At start
   * everything unfinished is taken up; later, a step only once it has been unfinished for longer than
   * a host may take, so another instance's step in flight gets its full time first.
   */
  async resume({ atStart }: { atStart: boolean }): Promise<void> {
    const { logger } = this.opts;
    const jobs: Promise<unknown>[] = [];
    const now = Date.now();
    const grace = Math.max(this.opts.hostTimeoutMs ?? 300_000, this.opts.snapshotTimeoutMs ?? 1_800_000);
    const unfinished = new Set<string>();
    for (const v of this.volumes.all()) {
      if (this.locks.busy(v.id)) continue;
      const app = v.app;
      const run = (what: string, work: () => Promise<unknown>, touchesDisk = true) => {
        const key = `${v.id} ${what}`;
        unfinished.add(key);
        const since = this.seenUnfinished.get(key) ?? now;
        this.seenUnfinished.set(key, since);
        if (!atStart && touchesDisk && now - since < grace) return;
        jobs.push(
          this.serial(v.id, work).then(
            () => logger.info({ volume_id: v.id }, `resumed: ${what}`),
            (err: unknown) => logger.warn({ err, volume_id: v.id }, `resumed: ${what} failed`),
          ),
        );
      };
      if (v.state === "creating") run("create", () => this.finishCreate(app, v.id));
      if (v.state === "extending") run("extend", () => this.finishExtend(app, v.id));
      if (v.state === "destroying") run("destroy", () => this.finishDestroy(app, v.id));
      for (const s of v.snapshots)
        if (s.state === "creating") run(`snapshot ${s.id}`, () => this.finishSnapshot(app, v.id, s.id));
      const holder = v.attached_machine_id;
      if (holder && this.machines.machine(app, holder)?.status === "destroyed")
        run(
          "detach of a destroyed machine",
          () => this.detachFrom(app, v.id, holder, "machine-destroyed"),
          false,
        );
    }
    for (const key of this.seenUnfinished.keys()) if (!unfinished.has(key)) this.seenUnfinished.delete(key);
    await Promise.all(jobs);
  }

  /**
   * The daily pass: a scheduled snapshot of every usable volume with auto_backup_enabled and none in
   * the last interval (its id derived from the interval, so instances running the pass together take
   * one), then pruning of the snapshots past their retention.
   */
  async scheduledPass(nowMs = Date.now()): Promise<void> {
    const interval = this.snapshotInterval;
    for (const v of [...this.volumes.all()]) {
      if (!volumeIsUsable(v) || !v.auto_backup_enabled) continue;
      // Any snapshot within the last interval (less a tenth, for a timer that fires early) counts.
      const recent = v.snapshots.some(
        (s) => s.state !== "failed" && nowMs - Date.parse(s.created_at) < interval * 0.9,
      );
      if (recent) continue;
      await this.snapshot(
        { app: v.app, volume_id: v.id, type: "scheduled" },
        newSnapshotId(`${v.id}/scheduled/${Math.floor(nowMs / interval)}`),
      ).catch((err: unknown) => this.opts.logger.warn({ err, volume_id: v.id }, "scheduled snapshot failed"));
    }
    await this.prune(nowMs);
  }

  /** Deletes the snapshots past their retention: the object first, then the event that says so. */
  async prune(nowMs = Date.now()): Promise<number> {
    let pruned = 0;
    for (const v of [...this.volumes.all()]) {
      for (const s of expiredSnapshots(v, nowMs)) {
        await this.serial(v.id, async () => {
          await this.deleteSnapshotObject(v.id, s.id);
          await this.handle(v.app, v.id, { type: "DeleteSnapshot", snapshotId: s.id }, `prune-${s.id}`);
          pruned++;
        }).catch((err: unknown) =>
          this.opts.logger.warn({ err, snapshot_id: s.id }, "snapshot prune failed"),
        );
      }
    }
    return pruned;
  }

  health() {
    let inFlight = 0;
    for (const v of this.volumes.all())
      if (v.state === "creating" || v.state === "extending" || v.state === "destroying") inFlight++;
    return { ok: true, volumes_known: [...this.volumes.all()].length, volumes_in_flight: inFlight };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subs) s.unsubscribe();
    // Work in flight is not waited for (a host may take minutes): the stream says what is
    // unfinished, and the next start takes it up.
    await Promise.all([this.volumes.stop(), this.machines.stop()]);
  }
}
