import {
  appDecider,
  appsStream,
  type ExistingMachine,
  type HostCommand,
  type HostEvent,
  type HostState,
  hostDecider,
  hostsStream,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
} from "@hangar/domain";
import { CommandHandler, type EventStore, isDomainError, loadAggregate } from "@hangar/eventstore";
import {
  AggregateView,
  type AppSecrets,
  MachinesView,
  type SignalRequest,
  serveCommands,
  subjects,
} from "@hangar/service";
import { type Logger, SpanStatusCode, trace, withSpan } from "@hangar/telemetry";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Counter, Gauge, type Registry } from "prom-client";
import { CheckSupervisor } from "./check-supervisor.js";
import type { ResolverProcess } from "./dns/resolver-process.js";
import { type ExitInfo, type ProcessDriver, restartDecision } from "./driver/mod.js";
import { HostHeartbeats } from "./heartbeat.js";
import { serveMachineInspection } from "./machine-exec.js";
import { machineFiles } from "./machine-files.js";
import { serveRecentLogs, toLogLine } from "./machine-logs.js";
import type { OrgNetworks } from "./network/org-networks.js";
import {
  hostRouteFacts,
  machineRouteFacts,
  type RemoteRoute,
  RouteSync,
  remoteRoutes,
} from "./network/remote-routes.js";
import { sixpnSpec } from "./network/sixpn.js";
import { type ImageSource, parseMachineConfig, resolveRun, type SandboxCapability } from "./run-spec.js";
import { MachineTunnels } from "./tunnel/machine-tunnels.js";
import type { HostVolumes } from "./volumes/host-volumes.js";

export interface HostAgentOptions {
  nc: NatsConnection;
  store: EventStore;
  driver: ProcessDriver;
  logger: Logger;
  registry?: Registry;
  hostId: string;
  region: string;
  cpus: number;
  memoryMb: number;
  /** The address other hosts reach this one at (machines' private addresses live on it). */
  address: string;
  /** Where other hosts route this host's 6PN traffic (HANGAR_HOST_AGENT_UNDERLAY_IP); none when alone. */
  underlayIp?: string;
  heartbeatEveryMs?: number;
  /** Whether OCI images can run here; without it, only `dir:` images run. */
  sandbox?: SandboxCapability;
  /** Pulls OCI images (needed when `sandbox` says they can run). */
  images?: ImageSource;
  /** HANGAR_DIR_IMAGE_ROOTS: the folders `dir:` images may run from; none (the default) refuses them. */
  dirImageRoots?: readonly string[];
  /** The orgs' 6PN prefixes: sandboxed netns machines get an address on their org's network. */
  orgNetworks?: Pick<OrgNetworks, "of">;
  /** This host's network (HostNetwork): the agent keeps its routes to other hosts' machines. */
  hostNetwork?: { setRemoteRoutes(routes: RemoteRoute[]): Promise<void> };
  /** This host's internal DNS resolver: the agent feeds it every machine change as it folds it. */
  dns?: Pick<ResolverProcess, "update">;
  /** HANGAR_HOST_AGENT_TUNNEL_PORT: the tunnel listener's port on `address` (0, the default: a free one). */
  tunnelPort?: number;
  /** The apps' secrets (AppSecrets), opened when one of their machines starts; without it, none. */
  secrets?: Pick<AppSecrets, "envFor">;
  /** This host's volumes (disk commands, reconcile, auto-extend); without it, the host offers no disk. */
  volumes?: HostVolumes;
  /** Room for volumes this host offers placement, GiB (HANGAR_HOST_AGENT_VOLUMES_DISK_GB). */
  diskGb?: number;
  /** Its host dedication group (HANGAR_HOST_AGENT_DEDICATION_ID): only machines asking for it come here. */
  dedicationId?: string;
  /** The organization whose machines may use the group (HANGAR_HOST_AGENT_DEDICATION_ORG). */
  dedicationOrg?: string;
}

/** How many times a check result or an exit is recorded before it is given up and logged. */
const RECORD_ATTEMPTS = 5;

/**
 * Tries `record` up to RECORD_ATTEMPTS times, waiting 1, 2, 3... s between tries, while `wanted()`
 * holds; then `done(err)` (err undefined once recorded). A record that cannot be made now (NATS away
 * for a moment) never ends the agent.
 */
function recordWithRetries(
  record: () => Promise<unknown>,
  wanted: () => boolean,
  done: (err?: unknown) => void,
): void {
  const attempt = (n: number): void => {
    record().then(
      () => done(),
      (err: unknown) => {
        if (n < RECORD_ATTEMPTS && wanted()) {
          setTimeout(() => attempt(n + 1), n * 1_000).unref();
          return;
        }
        done(err);
      },
    );
  };
  attempt(1);
}

/**
 * Runs the machines placed on one host and reports what really happens to them, like Fly's flyd.
 * The MACHINES stream says what each machine should be doing; the agent makes the local processes
 * match (reconcile), and records starts, exits, suspensions and check results as events on the
 * machine's own subject. After a crash it adopts what still runs and never starts a second copy.
 */
export class HostAgent {
  private readonly view: MachinesView;
  /** Every host, for the underlay addresses 6PN routes go via. */
  private readonly hostsView: AggregateView<HostState, HostCommand, HostEvent>;
  /** Present when the agent has a host network to route 6PN on. */
  private readonly routes: RouteSync | undefined;
  /** App -> org slug, as read by orgOf. */
  private readonly orgs = new Map<string, string>();
  private appsStreamSeen = false;
  private readonly machines: CommandHandler<MachineState, MachineCommand, MachineEvent>;
  private readonly hosts: CommandHandler<HostState, HostCommand, HostEvent>;
  /** Per machine: a reconcile in progress, and whether another pass was asked for meanwhile. */
  private readonly busy = new Map<string, { again: boolean }>();
  private readonly checks = new CheckSupervisor();
  /** The command id of each machine check's latest result (`<machine>/<check>`), while recording it. */
  private readonly latestCheck = new Map<string, string>();
  /** How many exits the driver reported of each machine are being recorded (recordExit). */
  private readonly exitsInFlight = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  /** Unsubscribes from the driver's exits and log lines: the driver outlives a stopped agent. */
  private readonly driverListeners: Array<() => void> = [];
  private readonly heartbeats: HostHeartbeats;
  private tunnels: MachineTunnels | undefined;
  private stopped = false;
  private ready = false;
  private readonly starts: Counter;
  private readonly exits: Counter;

  constructor(private readonly opts: HostAgentOptions) {
    this.machines = new CommandHandler(opts.store, machinesStream, machineDecider);
    this.view = MachinesView.create(opts.store);
    this.view.subscribe((c) => {
      if (this.ready && c.state.status !== "absent" && c.state.hostId === opts.hostId)
        this.schedule(c.aggregateId);
    });
    const dns = opts.dns;
    // From the first change on, history included: answers are right as soon as the view catches up.
    if (dns) this.view.subscribe((c) => this.feedDns(dns, c.aggregateId));
    this.hosts = new CommandHandler(opts.store, hostsStream, hostDecider);
    this.hostsView = AggregateView.create(opts.store, hostsStream, hostDecider);
    const hostNetwork = opts.hostNetwork;
    if (hostNetwork) {
      const routes = new RouteSync({
        compute: () =>
          remoteRoutes(
            opts.hostId,
            [...this.view.all()].map((e) => e.state),
            [...this.hostsView.entries()].flatMap(([, h]) => (h.status === "absent" ? [] : [h])),
          ),
        apply: (r) => hostNetwork.setRemoteRoutes(r),
        logger: opts.logger,
      });
      this.routes = routes;
      // Only once both views are caught up: a partial history would drop live routes for a moment.
      this.view.subscribe((c) => {
        if (this.ready && machineRouteFacts(c.previous) !== machineRouteFacts(c.state)) routes.changed();
      });
      this.hostsView.subscribe((c) => {
        if (this.ready && hostRouteFacts(c.previous) !== hostRouteFacts(c.state)) routes.changed();
      });
    }
    const registers = opts.registry ? [opts.registry] : [];
    this.starts = new Counter({
      name: "hangar_host_machine_starts_total",
      help: "Machine processes started",
      registers,
    });
    this.exits = new Counter({
      name: "hangar_host_machine_exits_total",
      help: "Machine processes that exited",
      labelNames: ["requested"],
      registers,
    });
    const driver = opts.driver;
    this.heartbeats = new HostHeartbeats({
      host: opts,
      machinesRunning: () => driver.running().length,
      publish: (subject, payload) => opts.nc.publish(subject, payload),
      ...(opts.heartbeatEveryMs !== undefined ? { everyMs: opts.heartbeatEveryMs } : {}),
    });
    new Gauge({
      name: "hangar_host_machines_running",
      help: "Machine processes running on this host",
      registers,
      collect() {
        this.set(driver.running().length);
      },
    });
  }

  /** Registers the host, adopts surviving processes, rebuilds machine state, reconciles, then follows. */
  async start(): Promise<void> {
    const { opts } = this;
    await this.hosts.handle(
      opts.hostId,
      {
        type: "RegisterHost",
        hostId: opts.hostId,
        region: opts.region,
        cpus: opts.cpus,
        memoryMb: opts.memoryMb,
        address: opts.address,
        underlayIp: opts.underlayIp ?? "",
        diskGb: opts.diskGb ?? 0,
        dedicationId: opts.dedicationId ?? "",
        dedicationOrg: opts.dedicationOrg ?? "",
      },
      {
        commandId: `register-${opts.hostId}-${opts.region}-${opts.cpus}-${opts.memoryMb}-${opts.address}-${opts.underlayIp ?? ""}-${opts.diskGb ?? 0}-${opts.dedicationId ?? ""}-${opts.dedicationOrg ?? ""}`,
      },
    );
    const adopted = await opts.driver.adopt();
    opts.logger.info(
      { adopted: adopted.running.map((m) => m.machineId), exited: adopted.exited.map((e) => e.machineId) },
      "adopted machines that survived the last agent",
    );
    this.driverListeners.push(
      opts.driver.onExit((machineId, exit) => this.recordExit(machineId, exit)),
      opts.driver.onLog((machineId, entry) => {
        const m = this.mine(machineId);
        if (m)
          opts.nc.publish(subjects.logs(m.app, m.region, m.machineId), JSON.stringify(toLogLine(m, entry)));
      }),
    );
    await Promise.all([this.view.follow(), this.hostsView.follow()]);
    await Promise.all([this.view.caughtUp, this.hostsView.caughtUp]);
    this.ready = true;
    this.routes?.changed();
    // Before machines start: a stale disk is gone and the volume commands are served.
    await opts.volumes?.start(this.view);
    for (const { machineId, exit } of adopted.exited) await this.onExit(machineId, exit);
    for (const { aggregateId } of this.view.onHost(opts.hostId)) this.schedule(aggregateId);
    this.subs.push(
      serveCommands<SignalRequest, { ok: true }>(
        opts.nc,
        subjects.hostCommand(opts.hostId, "signal"),
        `host-${opts.hostId}`,
        async (req) => {
          opts.driver.signal(req.machine_id, req.signal);
          return { ok: true };
        },
        (err) => opts.logger.error({ err }, "signal failed"),
      ),
      serveRecentLogs({
        nc: opts.nc,
        hostId: opts.hostId,
        driver: opts.driver,
        machine: (id) => this.mine(id),
        logger: opts.logger,
      }),
      ...serveMachineInspection({
        nc: opts.nc,
        hostId: opts.hostId,
        driver: opts.driver,
        appOf: (id) => this.mine(id)?.app,
        logger: opts.logger,
      }),
    );
    this.tunnels = await MachineTunnels.open({
      nc: opts.nc,
      hostId: opts.hostId,
      address: opts.address,
      port: opts.tunnelPort ?? 0,
      driver: opts.driver,
      appOf: (id) => this.mine(id)?.app,
      logger: opts.logger,
    });
    this.heartbeats.start();
  }

  /** Machines on this host, by id, as the stream says. */
  private mine(machineId: string): ExistingMachine | undefined {
    return this.view.onHostById(this.opts.hostId, machineId);
  }

  /** Runs one reconcile of a machine at a time; changes during a pass cause one more pass. */
  private schedule(aggregateId: string): void {
    if (this.stopped) return;
    const running = this.busy.get(aggregateId);
    if (running) {
      running.again = true;
      return;
    }
    const entry = { again: false };
    this.busy.set(aggregateId, entry);
    void (async () => {
      do {
        entry.again = false;
        try {
          await this.reconcile(aggregateId);
        } catch (err) {
          this.opts.logger.error({ err, machine: aggregateId }, "reconcile failed");
        }
      } while (entry.again && !this.stopped);
      this.busy.delete(aggregateId);
    })();
  }

  private record(m: ExistingMachine, command: MachineCommand, commandId: string) {
    return this.machines
      .handle(machineAggregateId(m.app, m.machineId), command, { commandId: `${commandId}-${m.machineId}` })
      .catch((err: unknown) => {
        // The machine moved on (destroyed, stopped by someone else): nothing to record.
        if (isDomainError(err)) {
          this.opts.logger.debug({ err, machine: m.machineId }, "recorded nothing");
          return undefined;
        }
        throw err;
      });
  }

  /** Makes the local process of one machine match what its events ask for. */
  private async reconcile(aggregateId: string): Promise<void> {
    const m = this.view.get(aggregateId);
    if (!m || m.hostId !== this.opts.hostId) return;
    const { driver } = this.opts;
    const proc = driver.running().find((r) => r.machineId === m.machineId);
    switch (m.status) {
      case "starting": {
        // In the trace of whoever asked for the start (a live change runs in its publisher's context).
        const attributes = {
          "hangar.app": m.app,
          "hangar.machine_id": m.machineId,
          "hangar.host_id": m.hostId,
        };
        await withSpan("machine start", { attributes }, async (span) => {
          if (proc) {
            // A suspended process resumes; a running one (adopted, or started before a crash) is recorded.
            span.setAttribute("hangar.machine.resumed", true);
            driver.resume(m.machineId);
            await this.recordStarted(m, proc, true);
            return;
          }
          await this.startProcess(m);
        });
        return;
      }
      case "started":
        // It died while nobody watched, and its exit left no trace.
        if (!proc) await this.exitUnseen(m.machineId);
        else this.ensureChecks(m, proc);
        return;
      case "stopping":
      case "replacing":
        if (proc) {
          const cfg = parseMachineConfig(m.configJson);
          const signal = m.stopSignal || cfg.stop_config?.signal || "SIGINT";
          const timeoutS = m.stopTimeoutS || cfg.stopTimeoutS;
          this.checks.stop(m.machineId);
          // A suspended machine is discarded by the stop: killed at once, it never runs again.
          await driver.stop(m.machineId, { signal, timeoutMs: timeoutS * 1000 });
        } else await this.exitUnseen(m.machineId);
        return;
      case "suspending":
        if (proc) {
          // The request's position tells this suspension from an earlier one of the same process.
          const commandId = `suspended-${m.instanceId}-${proc.pid}-${proc.startTime}-${this.view.seqOf(aggregateId)}`;
          this.checks.stop(m.machineId);
          // Resolves once every process is frozen; throws (the machine left running) when they are not.
          await driver.suspend(m.machineId);
          await this.record(m, { type: "RecordSuspended" }, commandId);
        } else await this.exitUnseen(m.machineId);
        return;
      case "suspended":
        if (!proc) await this.exitUnseen(m.machineId);
        return;
      case "destroying":
        this.checks.stop(m.machineId);
        await driver.destroy(m.machineId);
        await this.record(m, { type: "RecordDestroyed" }, "destroyed");
        return;
      case "destroyed":
        if (proc) await driver.destroy(m.machineId);
        return;
      case "created":
      case "stopped":
      case "failed":
        // Nothing should run; a process here outlived a stop recorded while this agent was down.
        if (proc) await driver.stop(m.machineId, { signal: "SIGKILL", timeoutMs: 1_000 });
        return;
    }
  }

  /** Puts a machine's state as of now in the DNS table: at once when its app's org is known, else once read. */
  private feedDns(dns: Pick<ResolverProcess, "update">, aggregateId: string): void {
    const m = this.view.get(aggregateId);
    if (!m) return;
    const org = this.orgs.get(m.app);
    if (org !== undefined) {
      dns.update(m, org);
      return;
    }
    this.orgOf(m.app).then(
      (found) => {
        // The state as of when the org arrived: a later change may have overtaken this one.
        const now = this.view.get(aggregateId);
        if (now) dns.update(now, found);
      },
      (err: unknown) => this.opts.logger.warn({ err, app: m.app }, "no org for the app's DNS names"),
    );
  }

  /**
   * The app's organization, which picks the id range its machines run as; read from the app's events
   * once (an app never changes org). An app the log does not know (yet) has none: the driver then
   * gives it a range of its own.
   */
  private async orgOf(app: string): Promise<string | undefined> {
    const known = this.orgs.get(app);
    if (known !== undefined) return known;
    // A platform without apps (a host agent run alone) has no APPS stream: no org to look up. Asked
    // first, since a direct get from a missing stream waits for its timeout.
    if (!this.appsStreamSeen) {
      const jsm = await jetstreamManager(this.opts.nc);
      const found = await jsm.streams.info(appsStream.name).then(
        () => true,
        (err: unknown) => {
          if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
          throw err;
        },
      );
      if (!found) return undefined;
      this.appsStreamSeen = true;
    }
    const { state } = await loadAggregate(this.opts.store, appsStream, appDecider, app);
    const org = state.status === "absent" ? undefined : state.orgSlug || undefined;
    if (org !== undefined) this.orgs.set(app, org);
    return org;
  }

  private async startProcess(m: ExistingMachine): Promise<void> {
    let proc: Awaited<ReturnType<ProcessDriver["start"]>>;
    try {
      const { images, sandbox, dirImageRoots } = this.opts;
      const t0 = performance.now();
      // The app's secrets are opened while its org, image and network are looked up: neither waits
      // for the other.
      const [{ org, run, network }, secretEnv] = await Promise.all([
        (async () => {
          const org = await this.orgOf(m.app);
          const run = await resolveRun(m, {
            ...(sandbox ? { sandbox } : {}),
            ...(images ? { images } : {}),
            ...(dirImageRoots ? { dirImageRoots } : {}),
            ...(org ? { owner: { org, orgOf: (app: string) => this.orgOf(app) } } : {}),
          });
          // 6PN needs the machine's own namespace and an org to be on the network of.
          const network =
            run.sandbox?.network === "netns" && org ? await this.opts.orgNetworks?.of(org) : undefined;
          return { org, run, network };
        })(),
        (async () => (await this.opts.secrets?.envFor(m.app)) ?? {})(),
      ]);
      // A file's secret is one of those just opened: its value goes into the file and nowhere else.
      const files = machineFiles(parseMachineConfig(m.configJson).files, secretEnv, m.app);
      // The driver logs its own steps' times (debug): this is what came before them.
      this.opts.logger.debug(
        { machine: m.machineId, ms: Math.round((performance.now() - t0) * 10) / 10 },
        "machine start resolved its org, image, network and secrets",
      );
      proc = await this.opts.driver.start({
        machineId: m.machineId,
        app: m.app,
        ...(org ? { org } : {}),
        region: m.region,
        imageRef: run.imageRef,
        instanceId: m.instanceId,
        cmd: run.cmd,
        cwd: run.cwd,
        env: run.env,
        secretEnv,
        ...(run.sandbox ? { sandbox: run.sandbox } : {}),
        ...(run.port !== undefined ? { port: run.port } : {}),
        guest: run.guest,
        ...(run.mounts.length > 0 ? { volumes: run.mounts } : {}),
        ...(files.length > 0 ? { files } : {}),
        ...(network ? { sixpn: sixpnSpec(network, m.machineId) } : {}),
      });
    } catch (err) {
      // An image that cannot run here or a process that cannot start: either way the start failed.
      trace.getActiveSpan()?.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      await this.record(
        m,
        { type: "RecordStartFailed", message: (err as Error).message },
        `start-failed-${m.instanceId}-${Date.now()}`,
      );
      return;
    }
    this.starts.inc();
    await this.recordStarted(m, proc, false);
  }

  private async recordStarted(
    m: ExistingMachine,
    proc: { pid: number; startTime: number; privateIp: string; privateIpv6?: string; port: number },
    adopted: boolean,
  ): Promise<void> {
    await this.record(
      m,
      {
        type: "RecordStarted",
        hostId: this.opts.hostId,
        pid: proc.pid,
        privateIp: proc.privateIp,
        privateIpv6: proc.privateIpv6 ?? "",
        port: proc.port,
        startTime: proc.startTime,
        adopted,
      },
      // The start request's position tells a resume of the same process from its first start.
      `started-${m.instanceId}-${proc.pid}-${proc.startTime}-${this.view.seqOf(machineAggregateId(m.app, m.machineId))}`,
    );
    const now = this.view.get(machineAggregateId(m.app, m.machineId));
    if (now && now.status === "started") this.ensureChecks(now, proc);
  }

  /**
   * Records a machine's exit. One that cannot be recorded now (NATS away for a moment) must not end
   * the agent: it is tried again (the records are idempotent), a few times, then left to the next
   * reconcile of the machine, which finds its process gone.
   */
  private recordExit(machineId: string, exit: ExitInfo): void {
    // Until it is recorded, a reconcile of the machine (another event of it, such as a cordon right
    // after a signal) must not take the missing process for an exit nobody saw: its record, with no
    // exit code, would take the real one's place (both have the run's command id).
    this.exitsInFlight.set(machineId, (this.exitsInFlight.get(machineId) ?? 0) + 1);
    const settled = () => {
      const left = (this.exitsInFlight.get(machineId) ?? 1) - 1;
      if (left > 0) this.exitsInFlight.set(machineId, left);
      else this.exitsInFlight.delete(machineId);
    };
    recordWithRetries(
      () => this.onExit(machineId, exit),
      () => !this.stopped,
      (err) => {
        settled();
        if (err !== undefined)
          this.opts.logger.warn({ err, machine: machineId }, "a machine's exit was not recorded");
      },
    );
  }

  /**
   * Records the exit of a machine whose process is gone with no exit to report, unless the driver
   * did report one that is being recorded (recordExit): that record, with its code, moves it on.
   */
  private async exitUnseen(machineId: string): Promise<void> {
    // An exit the driver is still reading (tens of ms, more on a busy host) is reported with its code
    // once read: a reconcile meanwhile (a cordon right after a signal) must not record it unknown
    // first, under the same command id (fly-admin.e2e's SIGHUP exit lost its code so, in CI).
    if (this.exitsInFlight.has(machineId) || this.opts.driver.exiting(machineId)) return;
    await this.onExit(machineId, { exitCode: null });
  }

  private async onExit(machineId: string, exit: ExitInfo): Promise<void> {
    // A stopping agent stops machines without recording it: the next agent finds them gone and
    // applies their restart policy.
    if (this.stopped) return;
    this.checks.stop(machineId);
    const m = this.mine(machineId);
    if (!m) return;
    const requested = m.status === "stopping" || m.status === "replacing" || m.status === "destroying";
    this.exits.inc({ requested: String(requested) });
    const cfg = parseMachineConfig(m.configJson);
    const restart = restartDecision(cfg.restart, exit, m.restarts, requested);
    await this.record(
      m,
      {
        type: "RecordExited",
        exitCode: exit.exitCode ?? -1,
        signal: exit.signal ?? "",
        codeUnknown: exit.exitCode === null,
        ...(exit.oomKilled ? { oomKilled: true } : {}),
        restart,
      },
      `exited-${m.instanceId}-${m.pid}-${m.startTime}`,
    );
  }

  private ensureChecks(m: ExistingMachine, proc: { privateIp: string; port: number }): void {
    this.checks.ensure(m, proc, (name, status, output) => {
      const key = `${m.machineId}/${name}`;
      const commandId = `check-${name}-${status}-${Date.now()}`;
      this.latestCheck.set(key, commandId);
      // A result that cannot be recorded now (NATS away for a moment) is tried again, a few times,
      // while it is still the check's latest: a check reports changes only, and a lost "passing"
      // would leave a deploy waiting.
      const latest = () => this.latestCheck.get(key) === commandId;
      recordWithRetries(
        () => this.record(m, { type: "RecordCheck", name, status, output }, commandId),
        latest,
        (err) => {
          if (latest()) this.latestCheck.delete(key);
          if (err !== undefined)
            this.opts.logger.warn(
              { err, machine: m.machineId, check: name, status },
              "check result not recorded",
            );
        },
      );
    });
  }

  health() {
    return {
      ok: this.ready,
      host_id: this.opts.hostId,
      region: this.opts.region,
      machines_running: this.opts.driver.running().length,
      // "cgroup-v1", "cgroup-v2" or "signals" (SIGSTOP, where the host has no freezer the agent may use).
      suspend_mode: this.opts.driver.suspendMode().mode,
    };
  }

  /** Stops following and heartbeating; machines keep running (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.driverListeners.splice(0)) off();
    this.heartbeats.stop();
    for (const s of this.subs) s.unsubscribe();
    await this.opts.volumes?.stop();
    await this.tunnels?.close();
    this.checks.stopAll();
    await this.routes?.stop();
    await Promise.all([this.view.stop(), this.hostsView.stop()]);
  }
}
