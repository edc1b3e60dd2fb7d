import { randomUUID } from "node:crypto";
import {
  type HostCommand,
  type HostEvent,
  type HostState,
  hostDecider,
  hostHasDiskRoom,
  hostsStream,
  type KnownHost,
  machineAggregateId,
} from "@hangar/domain";
import { CommandHandler, DomainError, type EventStore, isDomainError } from "@hangar/eventstore";
import {
  AggregateView,
  type HostHeartbeat,
  MachinesView,
  type PlaceRequest,
  type PlaceResult,
  type PlaceVolumeRequest,
  serveCommands,
  subjects,
  VolumesView,
} from "@hangar/service";
import { type Logger, withSpan } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Counter, Gauge, type Registry } from "prom-client";
import { noRoomMessage, type PlacementStrategy, rankHosts } from "./domain/rank.js";

export interface PlacementOptions {
  nc: NatsConnection;
  store: EventStore;
  logger: Logger;
  registry?: Registry;
  strategy?: PlacementStrategy;
  /** A host without a heartbeat for this long gets no new machines (default 5 s). */
  heartbeatTimeoutMs?: number;
  /** A reservation whose machine was never created is released after this long (default 30 s). */
  orphanAfterMs?: number;
  /** How often reservations are checked against the machines (default 5 s). */
  reconcileEveryMs?: number;
}

/**
 * Picks a host for each new machine and each volume and reserves its room there. The reservation is
 * an event on the host's aggregate, appended with the host's expected sequence, so capacity holds
 * with any number of placement instances; a machine or volume already holding room somewhere gets
 * that host again. A machine with a volume goes to the volume's host or nowhere.
 */
export class Placement {
  private readonly lastSeen = new Map<string, number>();
  /** When each reservation was made, to tell an orphan (machine never created) from a fresh one. */
  private readonly reservedAt = new Map<string, number>();
  private readonly startedAt = Date.now();
  private readonly handler: CommandHandler<HostState, HostCommand, HostEvent>;
  private subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly placed: Counter;
  private readonly refused: Counter;

  private constructor(
    private readonly opts: PlacementOptions,
    private readonly hosts: AggregateView<HostState, HostCommand, HostEvent>,
    private readonly machines: MachinesView,
    private readonly volumes: VolumesView,
  ) {
    hosts.subscribe((c) => {
      for (const r of c.events) {
        if (r.event.type === "HostMachineReserved")
          this.reservedAt.set(r.event.data.machineId ?? "", r.timeUnixMs);
        if (r.event.type === "HostMachineReleased") this.reservedAt.delete(r.event.data.machineId ?? "");
        if (r.event.type === "HostVolumeReserved")
          this.reservedAt.set(r.event.data.volumeId ?? "", r.timeUnixMs);
        if (r.event.type === "HostVolumeReleased") this.reservedAt.delete(r.event.data.volumeId ?? "");
      }
    });
    machines.subscribe((c) => {
      if (c.live && c.state.status === "destroyed" && c.previous.status !== "destroyed") {
        void this.release(c.state.hostId, c.state.machineId, "destroyed");
      }
    });
    volumes.subscribe((c) => {
      const v = c.state;
      if (c.live && v && (v.state === "destroyed" || v.state === "failed") && c.previous?.state !== v.state) {
        void this.releaseVolume(v.host_id, v.id);
      }
    });
    this.handler = new CommandHandler(opts.store, hostsStream, hostDecider);
    const registers = opts.registry ? [opts.registry] : [];
    this.placed = new Counter({
      name: "hangar_placements_total",
      help: "Machines placed",
      labelNames: ["region"],
      registers,
    });
    this.refused = new Counter({
      name: "hangar_placements_refused_total",
      help: "Placements refused for lack of room",
      labelNames: ["region"],
      registers,
    });
    const placement = this;
    new Gauge({
      name: "hangar_hosts",
      help: "Active hosts known to placement, by liveness",
      labelNames: ["alive"],
      registers,
      collect() {
        let alive = 0;
        let dead = 0;
        for (const [id, h] of placement.hosts.entries()) {
          if (h.status !== "active") continue;
          if (placement.isAlive(id)) alive++;
          else dead++;
        }
        this.set({ alive: "true" }, alive);
        this.set({ alive: "false" }, dead);
      },
    });
  }

  /** Rebuilds hosts and machines from their streams, then serves placement requests. */
  static async start(opts: PlacementOptions): Promise<Placement> {
    const hosts = AggregateView.create(opts.store, hostsStream, hostDecider);
    const machines = MachinesView.create(opts.store);
    const volumes = VolumesView.create(opts.store);
    const self = new Placement(opts, hosts, machines, volumes);
    await Promise.all([hosts.follow(), machines.follow(), volumes.follow()]);
    await Promise.all([hosts.caughtUp, machines.caughtUp, volumes.caughtUp]);
    // Reservations found in the history count as made at start: orphans among them wait a full period.
    const now = Date.now();
    for (const [, h] of hosts.entries()) {
      if (h.status === "absent") continue;
      for (const id of [...Object.keys(h.reservations), ...Object.keys(h.volumes)])
        self.reservedAt.set(id, now);
    }
    self.listen();
    return self;
  }

  private listen(): void {
    const { nc, logger } = this.opts;
    this.subs.push(
      nc.subscribe(subjects.heartbeatAll, {
        callback: (err, msg) => {
          if (err) return;
          try {
            const hb = msg.json<HostHeartbeat>();
            this.lastSeen.set(hb.host_id, Date.now());
          } catch {
            logger.warn({ subject: msg.subject }, "heartbeat that is not JSON");
          }
        },
      }),
    );
    this.subs.push(
      serveCommands<PlaceRequest, PlaceResult>(
        nc,
        subjects.place,
        "placement",
        (req) => this.place(req),
        (err) => logger.error({ err }, "placement failed"),
      ),
      serveCommands<PlaceVolumeRequest, PlaceResult>(
        nc,
        subjects.placeVolume,
        "placement",
        (req) => this.placeVolume(req),
        (err) => logger.error({ err }, "volume placement failed"),
      ),
    );
    const every = this.opts.reconcileEveryMs ?? 5_000;
    this.timer = setInterval(() => {
      this.reconcile().catch((err: unknown) => logger.error({ err }, "reservation reconcile failed"));
    }, every);
    this.timer.unref();
  }

  /** Alive = a heartbeat within the timeout; right after start, known hosts get one period of grace. */
  private isAlive(hostId: string): boolean {
    const timeout = this.opts.heartbeatTimeoutMs ?? 5_000;
    const seen = this.lastSeen.get(hostId) ?? this.startedAt;
    return Date.now() - seen < timeout;
  }

  /** Reserves room for one machine and says where, in a span that names the host chosen. */
  place(req: PlaceRequest): Promise<PlaceResult> {
    const attributes = {
      "hangar.app": req.app,
      "hangar.machine_id": req.machine_id,
      "hangar.region": req.region,
    };
    return withSpan("placement decide", { attributes }, async (span) => {
      const placed = await this.decide(req);
      span.setAttribute("hangar.host_id", placed.host_id);
      return placed;
    });
  }

  private async decide(req: PlaceRequest): Promise<PlaceResult> {
    if (!req.machine_id || !req.app || !req.region) {
      throw new DomainError("a placement needs machine_id, app and region", "invalid_argument");
    }
    // No host reports GPUs (a host agent runs crun, with no device passthrough): a GPU guest has no room anywhere.
    if ((req.gpus ?? 0) > 0) {
      this.refused.inc({ region: req.region });
      throw new DomainError(
        `insufficient capacity: machine ${req.machine_id} asks for ${req.gpus} GPU${req.gpus === 1 ? "" : "s"}${req.gpu_kind ? ` (${req.gpu_kind})` : ""}, and no host of this platform has a GPU; choose a VM size without one (shared-cpu-* or performance-*)`,
        "insufficient_capacity",
      );
    }
    const guest = { region: req.region, cpus: req.cpus, memoryMb: req.memory_mb };
    // Asked again (a retried request): the room it already has.
    for (const [id, h] of this.hosts.entries()) {
      if (h.status !== "absent" && h.reservations[req.machine_id]) return { host_id: id, region: h.region };
    }
    if (req.host_id) {
      // Where its volume is, or nowhere.
      const host = this.volumeHost(req.host_id, req.region, "the machine's volume");
      try {
        return await this.reserveMachine(host, req);
      } catch (err) {
        if (!isDomainError(err, "insufficient_capacity")) throw err;
        this.refused.inc({ region: req.region });
        throw new DomainError(
          `insufficient capacity: the machine's volume is on host ${req.host_id}, and ${err.message}`,
          "insufficient_capacity",
        );
      }
    }
    const ranked = rankHosts(
      [...this.hosts.entries()].map(([, h]) => h),
      guest,
      req.strategy ?? this.opts.strategy ?? "binpack",
      (id) => this.isAlive(id),
    );
    for (const host of ranked) {
      try {
        return await this.reserveMachine(host, req);
      } catch (err) {
        // Another instance filled it first: the next host may still have room.
        if (isDomainError(err, "insufficient_capacity")) continue;
        throw err;
      }
    }
    this.refused.inc({ region: req.region });
    throw new DomainError(
      noRoomMessage(
        [...this.hosts.entries()].map(([, h]) => h),
        guest,
      ),
      "insufficient_capacity",
    );
  }

  /** Reserves room for the machine on `host` (refused `insufficient_capacity` when it has none). */
  private async reserveMachine(host: KnownHost, req: PlaceRequest): Promise<PlaceResult> {
    await this.handler.handle(
      host.hostId,
      {
        type: "ReserveMachine",
        machineId: req.machine_id,
        app: req.app,
        cpus: req.cpus,
        memoryMb: req.memory_mb,
      },
      { commandId: `reserve-${req.machine_id}` },
    );
    this.placed.inc({ region: req.region });
    return { host_id: host.hostId, region: host.region };
  }

  /**
   * The host a volume lives on, when it can take more there: known, active, alive and in `region`;
   * refused with a message that names the host and says why otherwise.
   */
  private volumeHost(hostId: string, region: string, what: string): KnownHost {
    const h = this.hosts.get(hostId);
    const refuse = (why: string) =>
      new DomainError(
        `insufficient capacity: ${what} is on host ${hostId}, which ${why}`,
        "insufficient_capacity",
      );
    if (!h || h.status === "absent" || h.status === "removed") throw refuse("is gone");
    if (h.status === "cordoned") throw refuse(`is cordoned (${h.cordonReason || "no reason given"})`);
    if (!this.isAlive(hostId)) throw refuse("sends no heartbeat");
    if (h.region !== region) throw refuse(`is in region ${h.region}, not ${region}`);
    return h;
  }

  /**
   * Reserves disk room for a volume: on `host_id` when given (an extend or a fork's target), else
   * on the host in the region with the most free disk (volumes spread, so one host's disk filling
   * up touches the fewest apps). Asked again with the size it holds, the same host.
   */
  async placeVolume(req: PlaceVolumeRequest): Promise<PlaceResult> {
    const text = (v: unknown) => typeof v === "string" && v !== "";
    if (
      !text(req.volume_id) ||
      !text(req.app) ||
      !text(req.region) ||
      !Number.isInteger(req.size_gb) ||
      req.size_gb <= 0 ||
      (req.host_id !== undefined && !text(req.host_id)) ||
      (req.avoid_host_ids !== undefined &&
        !(Array.isArray(req.avoid_host_ids) && req.avoid_host_ids.every(text)))
    ) {
      throw new DomainError(
        "a volume placement needs volume_id, app, region and size_gb (a whole number of GB), and host ids as strings",
        "invalid_argument",
      );
    }
    let pinned = req.host_id;
    for (const [id, h] of this.hosts.entries()) {
      if (h.status === "absent" || !h.volumes[req.volume_id]) continue;
      if (h.volumes[req.volume_id]?.sizeGb === req.size_gb) return { host_id: id, region: h.region };
      // A size change (extend) happens where the volume is.
      pinned ??= id;
    }
    const avoid = new Set(req.avoid_host_ids ?? []);
    const candidates = pinned
      ? [this.volumeHost(pinned, req.region, `volume ${req.volume_id}`)]
      : [...this.hosts.entries()]
          .map(([, h]) => h)
          .filter(
            (h): h is KnownHost =>
              h.status === "active" &&
              h.region === req.region &&
              !avoid.has(h.hostId) &&
              this.isAlive(h.hostId) &&
              hostHasDiskRoom(h, req.size_gb, req.volume_id),
          )
          .sort(
            (a, b) => b.diskGb - b.usedDiskGb - (a.diskGb - a.usedDiskGb) || a.hostId.localeCompare(b.hostId),
          );
    for (const host of candidates) {
      try {
        await this.handler.handle(
          host.hostId,
          { type: "ReserveVolume", volumeId: req.volume_id, app: req.app, sizeGb: req.size_gb },
          // The decider answers a repeat (same size) with nothing; a fixed id could make a later
          // extend to a size held once before look like a duplicate.
          { commandId: `reserve-${req.volume_id}-${req.size_gb}-${randomUUID()}` },
        );
        this.placed.inc({ region: req.region });
        return { host_id: host.hostId, region: host.region };
      } catch (err) {
        if (isDomainError(err, "insufficient_capacity") && !pinned) continue;
        throw err;
      }
    }
    this.refused.inc({ region: req.region });
    throw new DomainError(this.noDiskMessage(req, avoid), "insufficient_capacity");
  }

  /** Why no host takes a volume, in words an operator can act on. */
  private noDiskMessage(req: PlaceVolumeRequest, avoid: Set<string>): string {
    const inRegion = [...this.hosts.entries()]
      .map(([, h]) => h)
      .filter((h): h is KnownHost => h.status === "active" && h.region === req.region);
    if (inRegion.length === 0) return `insufficient capacity: no host in region ${req.region} for volumes`;
    const free = inRegion
      .filter((h) => !avoid.has(h.hostId))
      .map((h) => `${h.hostId}: ${h.diskGb - h.usedDiskGb} GB free`)
      .join(", ");
    const unique =
      avoid.size > 0
        ? ` (not on ${[...avoid].sort().join(", ")}: they hold the app's volumes of this name)`
        : "";
    return `insufficient capacity: no host in region ${req.region} has ${req.size_gb} GB of volume disk free${unique}; ${free || "no other host"}`;
  }

  private async releaseVolume(hostId: string, volumeId: string): Promise<void> {
    if (!hostId) return;
    await this.handler.handle(
      hostId,
      { type: "ReleaseVolume", volumeId },
      { commandId: `release-${volumeId}` },
    );
  }

  private async release(hostId: string, machineId: string, reason: string): Promise<void> {
    if (!hostId) return;
    await this.handler.handle(
      hostId,
      { type: "ReleaseMachine", machineId, reason },
      { commandId: `release-${machineId}-${reason}` },
    );
  }

  /**
   * Frees room nobody uses: machines destroyed while no placement ran, reservations whose machine
   * was never created (the gateway died in between), and losers of a race where the machine got
   * another host.
   */
  async reconcile(now = Date.now()): Promise<number> {
    const orphanAfter = this.opts.orphanAfterMs ?? 30_000;
    let released = 0;
    for (const [hostId, h] of [...this.hosts.entries()]) {
      if (h.status === "absent") continue;
      for (const [machineId, r] of Object.entries(h.reservations)) {
        const m = this.machines.get(machineAggregateId(r.app, machineId));
        let reason: string | undefined;
        if (m === undefined) {
          if (now - (this.reservedAt.get(machineId) ?? now) > orphanAfter) reason = "never-created";
        } else if (m.status === "destroyed") reason = "destroyed";
        else if (m.hostId !== hostId) reason = "placed-elsewhere";
        if (reason) {
          await this.release(hostId, machineId, reason);
          released++;
        }
      }
      for (const [volumeId, r] of Object.entries(h.volumes)) {
        const v = this.volumes.volume(r.app, volumeId);
        const gone =
          v === undefined
            ? now - (this.reservedAt.get(volumeId) ?? now) > orphanAfter
            : v.state === "destroyed" || v.state === "failed" || v.host_id !== hostId;
        if (gone) {
          await this.releaseVolume(hostId, volumeId);
          released++;
        } else if (v && v.state === "created" && r.sizeGb > v.size_gb) {
          // An extend that failed: the room goes back to the size the volume has.
          await this.handler.handle(
            hostId,
            { type: "ReserveVolume", volumeId, app: r.app, sizeGb: v.size_gb },
            { commandId: `shrink-${volumeId}-${r.sizeGb}-${v.size_gb}` },
          );
        }
      }
    }
    return released;
  }

  health() {
    let alive = 0;
    for (const [id, h] of this.hosts.entries()) if (h.status === "active" && this.isAlive(id)) alive++;
    return { ok: true, hosts_alive: alive, hosts_known: this.hosts.size, machines_known: this.machines.size };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    await Promise.all([this.hosts.stop(), this.machines.stop(), this.volumes.stop()]);
  }
}
