import {
  type HostCommand,
  type HostEvent,
  type HostState,
  hostDecider,
  hostsStream,
  machineAggregateId,
} from "@hangar/domain";
import { CommandHandler, DomainError, type EventStore, isDomainError } from "@hangar/eventstore";
import {
  AggregateView,
  type HostHeartbeat,
  MachinesView,
  type PlaceRequest,
  type PlaceResult,
  serveCommands,
  subjects,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
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
 * Picks a host for each new machine and reserves its room there. The reservation is an event on the
 * host's aggregate, appended with the host's expected sequence, so capacity holds with any number of
 * placement instances; a machine already holding room somewhere gets that host again.
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
  ) {
    hosts.subscribe((c) => {
      for (const r of c.events) {
        if (r.event.type === "HostMachineReserved")
          this.reservedAt.set(r.event.data.machineId ?? "", r.timeUnixMs);
        if (r.event.type === "HostMachineReleased") this.reservedAt.delete(r.event.data.machineId ?? "");
      }
    });
    machines.subscribe((c) => {
      if (c.live && c.state.status === "destroyed" && c.previous.status !== "destroyed") {
        void this.release(c.state.hostId, c.state.machineId, "destroyed");
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
    const self = new Placement(opts, hosts, machines);
    await Promise.all([hosts.follow(), machines.follow()]);
    await Promise.all([hosts.caughtUp, machines.caughtUp]);
    // Reservations found in the history count as made at start: orphans among them wait a full period.
    const now = Date.now();
    for (const [, h] of hosts.entries()) {
      if (h.status === "absent") continue;
      for (const id of Object.keys(h.reservations)) self.reservedAt.set(id, now);
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

  /** Reserves room for one machine and says where. */
  async place(req: PlaceRequest): Promise<PlaceResult> {
    if (!req.machine_id || !req.app || !req.region) {
      throw new DomainError("a placement needs machine_id, app and region", "invalid_argument");
    }
    const guest = { region: req.region, cpus: req.cpus, memoryMb: req.memory_mb };
    // Asked again (a retried request): the room it already has.
    for (const [id, h] of this.hosts.entries()) {
      if (h.status !== "absent" && h.reservations[req.machine_id]) return { host_id: id, region: h.region };
    }
    const ranked = rankHosts(
      [...this.hosts.entries()].map(([, h]) => h),
      guest,
      req.strategy ?? this.opts.strategy ?? "binpack",
      (id) => this.isAlive(id),
    );
    for (const host of ranked) {
      try {
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
    await Promise.all([this.hosts.stop(), this.machines.stop()]);
  }
}
