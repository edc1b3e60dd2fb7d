import { randomUUID } from "node:crypto";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type HostCommand,
  type HostEvent,
  type HostState,
  hostDecider,
  hostHasDiskRoom,
  hostsStream,
  type KnownHost,
  machineAggregateId,
} from "@hangar/domain";
import {
  CommandHandler,
  DomainError,
  type EventStore,
  isConcurrencyError,
  isDomainError,
} from "@hangar/eventstore";
import {
  AggregateView,
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
import { HostIndex } from "./domain/host-index.js";
import { type GuestRequest, noRoomMessage, type PlacementStrategy } from "./domain/rank.js";

/** Appends to one host that lost to another instance's before the host is left for another one. */
const MAX_CONFLICTS_PER_HOST = 3;
/**
 * Rounds over the hosts that were left only for losing to other instances' appends, once every
 * host that fits has been tried: each loss is another instance's reservation made, so this bounds
 * the wait under a storm, not the progress. Past it the answer is `unavailable` (ask again), never
 * `insufficient_capacity` for a host that may still have room.
 */
const MAX_RACE_ROUNDS = 10;

/** A region with fewer hosts than this is placed strictly in rank order: the best host that fits. */
const LARGE_REGION_HOSTS = 100;
/** In a larger region a request chooses among this share of the hosts that fit, at least ... */
const CHOICE_SHARE = 1 / 100;
/** ... and at least this many hosts per request of this instance in flight in the region. */
const CHOICES_PER_REQUEST = 8;

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
  /** The active hosts in rank order, and which host holds each machine's room. */
  private readonly index = new HostIndex();
  /** The dedication group (with its organization) of each host in one (few hosts): a shared request checks a host in O(1). */
  private readonly dedications = new Map<string, string>();
  /** Per host, the end of this instance's appends to it: they run one at a time. */
  private readonly appending = new Map<string, Promise<void>>();
  /** Per region, this instance's machine placements under way. */
  private readonly inFlight = new Map<string, number>();
  private subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly placed: Counter;
  private readonly refused: Counter;
  private readonly conflicts: Counter;

  private constructor(
    private readonly opts: PlacementOptions,
    private readonly hosts: AggregateView<HostState, HostCommand, HostEvent>,
    private readonly machines: MachinesView,
    private readonly volumes: VolumesView,
    /** The apps' organizations: a host dedication group takes only its own organization's machines. */
    private readonly apps: AggregateView<AppState, AppCommand, AppEvent>,
  ) {
    hosts.subscribe((c) => {
      this.index.update(c.state);
      if (c.state.status !== "absent" && c.state.dedicationId)
        this.dedications.set(c.aggregateId, groupKey(c.state.dedicationId, c.state.dedicationOrg ?? ""));
      else this.dedications.delete(c.aggregateId);
      for (const r of c.events) {
        if (r.event.type === "HostMachineReserved") {
          this.reservedAt.set(r.event.data.machineId ?? "", r.timeUnixMs);
          this.index.reserved(r.event.data.machineId ?? "", c.aggregateId);
        }
        if (r.event.type === "HostMachineReleased") {
          this.reservedAt.delete(r.event.data.machineId ?? "");
          this.index.released(r.event.data.machineId ?? "", c.aggregateId);
        }
        if (r.event.type === "HostVolumeReserved")
          this.reservedAt.set(r.event.data.volumeId ?? "", r.timeUnixMs);
        if (r.event.type === "HostVolumeReleased") this.reservedAt.delete(r.event.data.volumeId ?? "");
      }
    });
    machines.subscribe((c) => {
      if (c.live && c.state.status === "destroyed" && c.previous.status !== "destroyed") {
        // A release that fails (NATS unavailable, a conflict that outlasted its retries) leaves
        // the room reserved until reconcile() frees it; it must not end the process.
        const { hostId, machineId } = c.state;
        this.release(hostId, machineId, "destroyed").catch((err: unknown) =>
          this.opts.logger.warn(
            { err, host: hostId, machine: machineId },
            "release of a destroyed machine's room failed; the next reconcile frees it",
          ),
        );
      }
    });
    volumes.subscribe((c) => {
      const v = c.state;
      if (c.live && v && (v.state === "destroyed" || v.state === "failed") && c.previous?.state !== v.state) {
        this.releaseVolume(v.host_id, v.id).catch((err: unknown) =>
          this.opts.logger.warn(
            { err, host: v.host_id, volume: v.id },
            "release of a volume's room failed; the next reconcile frees it",
          ),
        );
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
    this.conflicts = new Counter({
      name: "hangar_placement_conflicts_total",
      help: "Reservations that lost to another instance's append to the same host and were decided again",
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
    const apps = AggregateView.create(opts.store, appsStream, appDecider);
    const self = new Placement(opts, hosts, machines, volumes, apps);
    await Promise.all([hosts.follow(), machines.follow(), volumes.follow(), apps.follow()]);
    await Promise.all([hosts.caughtUp, machines.caughtUp, volumes.caughtUp, apps.caughtUp]);
    // Reservations found in the history count as made at start: orphans among them wait a full period.
    const now = Date.now();
    for (const [, h] of hosts.entries()) {
      if (h.status === "absent") continue;
      for (const id of [...Object.keys(h.reservations), ...Object.keys(h.volumes)])
        self.reservedAt.set(id, now);
    }
    self.listen();
    // Its subscriptions are at the server before start resolves (a request sent right after finds them).
    await opts.nc.flush();
    return self;
  }

  private listen(): void {
    const { nc, logger } = this.opts;
    // The subject names the host (hosts.heartbeat.<host_id>): liveness needs no decoding of the
    // body, which matters at 10,000 hosts beating every second.
    const prefix = subjects.heartbeat("");
    this.subs.push(
      nc.subscribe(subjects.heartbeatAll, {
        callback: (err, msg) => {
          if (err) return;
          this.lastSeen.set(msg.subject.slice(prefix.length), Date.now());
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
  private isAlive(hostId: string, now = Date.now()): boolean {
    const timeout = this.opts.heartbeatTimeoutMs ?? 5_000;
    const seen = this.lastSeen.get(hostId) ?? this.startedAt;
    return now - seen < timeout;
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
    // As a machine config has them (MachineConfigSchema): the host index leaves out full hosts.
    if (
      !(Number.isInteger(req.cpus) && req.cpus >= 1 && Number.isInteger(req.memory_mb) && req.memory_mb >= 1)
    ) {
      throw new DomainError(
        "a placement needs cpus and memory_mb, whole numbers of at least 1",
        "invalid_argument",
      );
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
    const dedication = req.host_dedication_id ?? "";
    if (typeof dedication !== "string") {
      throw new DomainError("a placement's host_dedication_id is a string", "invalid_argument");
    }
    // Asked again (a retried request): the room it already has.
    const holder = this.index.hostOf(req.machine_id);
    const held = holder === undefined ? undefined : this.hosts.get(holder);
    if (held && held.status !== "absent") return { host_id: held.hostId, region: held.region };
    if (req.host_id) {
      // Where its volume is, or nowhere.
      const host = this.volumeHost(req.host_id, req.region, "the machine's volume");
      if ((this.dedications.get(host.hostId) ?? "") !== this.dedicationKey(req.app, dedication)) {
        this.refused.inc({ region: req.region });
        throw new DomainError(
          `insufficient capacity: the machine's volume is on host ${host.hostId}, ${host.dedicationId ? `of host dedication ${host.dedicationId}` : "a shared host"}, and the machine asks for ${dedication ? `host dedication ${dedication}` : "a shared host"}`,
          "insufficient_capacity",
        );
      }
      try {
        return await this.reserveMachine(host.hostId, req);
      } catch (err) {
        if (!isDomainError(err, "insufficient_capacity")) throw err;
        this.refused.inc({ region: req.region });
        throw new DomainError(
          `insufficient capacity: the machine's volume is on host ${req.host_id}, and ${err.message}`,
          "insufficient_capacity",
        );
      }
    }
    const strategy = req.strategy ?? this.opts.strategy ?? "binpack";
    const group = this.dedicationKey(req.app, dedication);
    if (group !== "" && !this.hasDedicatedHost(req.region, group)) {
      this.refused.inc({ region: req.region });
      throw new DomainError(
        `insufficient capacity: machine ${req.machine_id} asks for host dedication ${dedication}, and no live host in region ${req.region} belongs to it (a host joins one with HANGAR_HOST_AGENT_DEDICATION_ID)`,
        "insufficient_capacity",
      );
    }
    // Only hosts of the machine's dedication group (none: shared hosts only), as Fly places them:
    // choose() checks each candidate's group.
    const tried = new Set<string>();
    // Hosts left after losing every append to other instances': they may still have room.
    const lost = new Set<string>();
    let rounds = 0;
    this.inFlight.set(req.region, (this.inFlight.get(req.region) ?? 0) + 1);
    try {
      for (let hostId = this.choose(guest, strategy, req.machine_id, tried, group); ; ) {
        if (hostId === undefined) {
          // Every host that fits was tried. Those lost only to races are tried again on the state
          // the winners left; a host that is full now refuses with insufficient_capacity.
          if (lost.size === 0 || ++rounds > MAX_RACE_ROUNDS) break;
          for (const id of lost) tried.delete(id);
          lost.clear();
          hostId = this.choose(guest, strategy, req.machine_id, tried, group);
          continue;
        }
        tried.add(hostId);
        try {
          return await this.reserveMachine(hostId, req);
        } catch (err) {
          // Another instance filled it first, or kept winning it: another host may still have room.
          if (isConcurrencyError(err)) lost.add(hostId);
          else if (!isDomainError(err, "insufficient_capacity")) throw err;
        }
        hostId = this.choose(guest, strategy, req.machine_id, tried, group);
      }
    } finally {
      this.inFlight.set(req.region, (this.inFlight.get(req.region) ?? 1) - 1);
    }
    if (lost.size > 0) {
      throw new DomainError(
        `placement of machine ${req.machine_id} lost every append to other placement instances on host ${[...lost].join(", ")} for ${MAX_RACE_ROUNDS + 1} rounds, and it may still have room; try again`,
        "unavailable",
      );
    }
    this.refused.inc({ region: req.region });
    const sameGroup = [...this.hosts.entries()]
      .map(([, h]) => h)
      .filter((h) => h.status !== "absent" && (this.dedications.get(h.hostId) ?? "") === group);
    throw new DomainError(
      `${noRoomMessage(sameGroup, guest)}${dedication ? ` (hosts of dedication ${dedication})` : this.dedications.size > 0 ? " (shared hosts: those of a dedication group take only machines that ask for it)" : ""}`,
      "insufficient_capacity",
    );
  }

  /**
   * The key of the dedication group a request may use: the group with the app's organization, so
   * that another organization's group of the same name is no host of it (and the refusal is the one
   * for a group no host has: it does not say that the name is taken). "" for shared hosts.
   */
  private dedicationKey(app: string, dedication: string): string {
    if (dedication === "") return "";
    const a = this.apps.get(app);
    if (a?.status !== "created") {
      throw new DomainError(`app ${app} is not known to placement yet; try again`, "unavailable");
    }
    return groupKey(dedication, a.orgSlug);
  }

  /** Whether a live, active host of `region` belongs to the dedication group. */
  private hasDedicatedHost(region: string, dedication: string): boolean {
    for (const [id, group] of this.dedications) {
      if (group !== dedication) continue;
      const h = this.hosts.get(id);
      if (h?.status === "active" && h.region === region && this.isAlive(id)) return true;
    }
    return false;
  }

  /**
   * The host to try next. In a small region, the best host that fits. In a large one, one of the
   * best hosts rather than always the best, so that instances (and this instance's concurrent
   * requests) do not all append to the same host and lose to each other's expected sequence: of two
   * ranks drawn from the best CHOICE_SHARE of the region (more when many requests are under way),
   * by the machine id, the better one (power of two choices), skipping hosts this instance is
   * appending to already; when it appends to every host that fits, the best one.
   */
  private choose(
    guest: GuestRequest,
    strategy: PlacementStrategy,
    machineId: string,
    tried: Set<string>,
    dedication: string,
  ): string | undefined {
    const hosts = this.index.activeIn(guest.region);
    const now = Date.now();
    const usable = (id: string) =>
      !tried.has(id) && (this.dedications.get(id) ?? "") === dedication && this.isAlive(id, now);
    if (hosts >= LARGE_REGION_HOSTS) {
      const size = Math.max(
        Math.ceil(hosts * CHOICE_SHARE),
        CHOICES_PER_REQUEST * (this.inFlight.get(guest.region) ?? 1),
      );
      const hash = fnv1a(machineId);
      const rank = Math.min(hash % size, (Math.imul(hash, 0x9e3779b1) >>> 0) % size);
      const idle = this.index.from(guest, strategy, rank, (id) => !this.appending.has(id) && usable(id));
      if (idle) return idle.hostId;
    }
    return this.index.ranked(guest, strategy, usable).next().value?.hostId;
  }

  /**
   * Reserves room for the machine on a host (refused `insufficient_capacity` when it has none). The
   * decision is made on the hosts view's state of the host and appended with the sequence that state
   * is at, so a reservation another instance appended in between fails the append and is decided
   * again on: capacity holds with any number of instances. This instance's appends to one host run
   * one after another, each waiting until the view has folded it.
   */
  private reserveMachine(hostId: string, req: PlaceRequest): Promise<PlaceResult> {
    const command: HostCommand = {
      type: "ReserveMachine",
      machineId: req.machine_id,
      app: req.app,
      cpus: req.cpus,
      memoryMb: req.memory_mb,
    };
    const commandId = `reserve-${req.machine_id}`;
    return this.oneAtATime(hostId, async () => {
      for (let conflicts = 0; ; ) {
        const state = this.hosts.get(hostId) ?? hostDecider.initialState();
        const seq = this.hosts.seqOf(hostId);
        // Refuses (insufficient_capacity, not_found) or decides nothing when the machine holds room here.
        const events = hostDecider.decide(command, state);
        if (events.length === 0) break;
        try {
          const ack = await this.opts.store.append(hostsStream, hostId, events, {
            commandId,
            expectedSeq: seq,
          });
          await this.hosts.waitForSeq(ack.seq);
          break;
        } catch (err) {
          if (!isConcurrencyError(err)) throw err;
          this.conflicts.inc();
          if (++conflicts >= MAX_CONFLICTS_PER_HOST) throw err;
          await this.hosts.waitForSeq(err.actual ?? seq + 1);
        }
      }
      this.placed.inc({ region: req.region });
      const h = this.hosts.get(hostId);
      return { host_id: hostId, region: h && h.status !== "absent" ? h.region : req.region };
    });
  }

  /** Runs `fn` after this instance's earlier work on the host has finished. */
  private oneAtATime<T>(hostId: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.appending.get(hostId) ?? Promise.resolve()).then(fn);
    const done = result.then(
      () => undefined,
      () => undefined,
    );
    this.appending.set(hostId, done);
    void done.then(() => {
      if (this.appending.get(hostId) === done) this.appending.delete(hostId);
    });
    return result;
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
    await Promise.all([this.hosts.stop(), this.machines.stop(), this.volumes.stop(), this.apps.stop()]);
  }
}

/** FNV-1a of a string: a cheap, stable spread of machine ids over the hosts to choose among. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** A host dedication group as placement keys it: its id with the organization that owns it. */
function groupKey(dedicationId: string, org: string): string {
  return `${dedicationId}\u0000${org}`;
}
