import { setTimeout as sleep } from "node:timers/promises";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type ExistingMachine,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineAggregateId,
  machineDecider,
  machinesStream,
  releasesStream,
  type ScalingCommand,
  type ScalingEvent,
  type ScalingState,
  scalingDecider,
  scalingStream,
  volumesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream } from "@hangar/eventstore";
import {
  AggregateView,
  type LoadSample,
  MachinesView,
  type PlaceRequest,
  type PlaceResult,
  type ProxyHeartbeat,
  serveCommands,
  subjects,
} from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";

/** Calls `probe` every 50 ms until it returns something other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** A machine config with one http service, as a deploy would make it. */
export function serviceConfig(s: { soft?: number; min?: number; max?: number; autostop?: string }): string {
  return JSON.stringify({
    image: "dir:/srv/app",
    guest: { cpus: 1, memory_mb: 128 },
    metadata: { fly_process_group: "app" },
    services: [
      {
        protocol: "tcp",
        internal_port: 8080,
        ports: [{ port: 80, handlers: ["http"] }],
        concurrency: { type: "connections", soft_limit: s.soft ?? 20 },
        autostop: s.autostop ?? "stop",
        autostart: true,
        min_machines_running: s.min ?? 0,
        ...(s.max !== undefined ? { max_machines_running: s.max } : {}),
      },
    ],
  });
}

/** One proxy's report of one app: total in flight and per machine. */
export interface ProxyLoad {
  concurrency: number;
  machines: Record<string, number>;
}

/**
 * The platform around the scheduler, played by the test: a nats-server of its own (the streams have
 * fixed names), placement answering every request with a host, a host agent that records what it is
 * asked to do at once, and a proxy that publishes heartbeats and load samples every 100 ms.
 */
export class Platform {
  readonly placements: PlaceRequest[] = [];
  /** What the fake proxy reports per app. */
  readonly load = new Map<string, ProxyLoad>();
  /** The MACHINES sequence the fake proxy says it folded; undefined: the view's latest (it keeps up). */
  proxySeq: number | undefined;
  private readonly hosts = new Map<string, string>();
  private readonly apps: string[] = [];
  private readonly subs: Subscription[] = [];
  private proxyTimer: NodeJS.Timeout | undefined;
  private readonly agentErrors: unknown[] = [];

  private constructor(
    readonly server: NatsServer,
    readonly nc: NatsConnection,
    readonly store: EventStore,
    readonly machines: MachinesView,
    readonly scaling: AggregateView<ScalingState, ScalingCommand, ScalingEvent>,
    private readonly appsHandler: CommandHandler<AppState, AppCommand, AppEvent>,
    readonly machinesHandler: CommandHandler<MachineState, MachineCommand, MachineEvent>,
  ) {
    machines.subscribe(({ aggregateId, state }) => this.agent(aggregateId, state));
  }

  static async start(): Promise<Platform> {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    const store = await EventStore.connect(nc);
    for (const s of [appsStream, machinesStream, scalingStream, releasesStream, volumesStream])
      await ensureStream(store.jsm, s);
    const machinesHandler = new CommandHandler(store, machinesStream, machineDecider);
    const machines = MachinesView.create(store);
    const scaling = await AggregateView.start(store, scalingStream, scalingDecider);
    const platform = new Platform(
      server,
      nc,
      store,
      machines,
      scaling,
      new CommandHandler(store, appsStream, appDecider),
      machinesHandler,
    );
    await machines.follow();
    await Promise.all([machines.caughtUp, scaling.caughtUp]);
    platform.subs.push(
      serveCommands<PlaceRequest, PlaceResult>(nc, subjects.place, "placement", async (req) => {
        platform.placements.push(req);
        const hosts = platform.hosts;
        // The same machine asking again gets the host it already holds, as real placement does.
        // A machine on a volume goes to the volume's host.
        const host = hosts.get(req.machine_id) ?? req.host_id ?? `host-${hosts.size % 3}`;
        hosts.set(req.machine_id, host);
        return { host_id: host, region: req.region };
      }),
    );
    platform.proxyTimer = setInterval(() => platform.report(), 100);
    return platform;
  }

  /** Errors the fake host agent met (a test asserts there were none). */
  get errors(): unknown[] {
    return this.agentErrors;
  }

  async createApp(app: string): Promise<void> {
    await this.appsHandler.handle(
      app,
      { type: "CreateApp", name: app, orgSlug: "personal" },
      { commandId: `create-app-${app}` },
    );
  }

  /** Destroys the apps created so far, so later schedulers leave their machines alone. */
  async destroyApps(): Promise<void> {
    for (const app of this.apps.splice(0)) {
      await this.appsHandler.handle(app, { type: "DestroyApp" }, { commandId: `destroy-app-${app}` });
      this.load.delete(app);
    }
  }

  /** Creates a machine and waits until the fake agent reports it started. */
  async startedMachine(app: string, machineId: string, configJson: string): Promise<void> {
    await this.machinesHandler.handle(
      machineAggregateId(app, machineId),
      {
        type: "CreateMachine",
        machineId,
        app,
        name: `${app}-${machineId}`,
        region: "local",
        instanceId: `I${machineId}`,
        configJson,
        skipLaunch: false,
        hostId: "host-0",
      },
      { commandId: `create-${machineId}` },
    );
    await waitFor(`${machineId} started`, () =>
      this.machine(app, machineId)?.status === "started" ? true : undefined,
    );
  }

  machine(app: string, machineId: string): ExistingMachine | undefined {
    return this.machines.machine(app, machineId);
  }

  machinesOf(app: string): ExistingMachine[] {
    return this.machines.ofApp(app).map((e) => e.state);
  }

  scalingOf(app: string): ScalingState {
    return this.scaling.get(app) ?? scalingDecider.initialState();
  }

  async stop(): Promise<void> {
    clearInterval(this.proxyTimer);
    for (const s of this.subs) s.unsubscribe();
    await this.machines.stop();
    await this.scaling.stop();
    this.store.close();
    await this.nc.drain();
    await this.server.stop();
  }

  private report(): void {
    const seq = this.proxySeq ?? this.machines.lastSeq;
    const hb: ProxyHeartbeat = {
      proxy_id: "proxy-1",
      region: "local",
      ts: Date.now(),
      machines_seq: seq,
      apps: [...this.load.keys()],
    };
    this.nc.publish(subjects.proxyHeartbeat(hb.proxy_id), JSON.stringify(hb));
    for (const [app, l] of this.load) {
      const sample: LoadSample = {
        proxy_id: "proxy-1",
        region: "local",
        app,
        ts: Date.now(),
        machines_seq: seq,
        concurrency: l.concurrency,
        queued: 0,
        machines: Object.entries(l.machines).map(([id, n]) => ({
          machine_id: id,
          region: "local",
          concurrency: n,
        })),
      };
      this.nc.publish(subjects.load(app), JSON.stringify(sample));
    }
  }

  // The host agent: does at once what each machine is asked to do, recorded through the decider.
  private agent(aggregateId: string, state: MachineState): void {
    if (state.status === "absent") return;
    const seq = this.machines.seqOf(aggregateId);
    let command: MachineCommand | undefined;
    if (state.status === "starting")
      command = {
        type: "RecordStarted",
        hostId: state.hostId,
        pid: 1000 + seq,
        privateIp: "127.77.0.1",
        privateIpv6: "",
        port: 9000 + seq,
        startTime: seq,
        adopted: false,
      };
    else if (state.status === "stopping" || state.status === "replacing")
      command = {
        type: "RecordExited",
        exitCode: 0,
        signal: state.stopSignal,
        codeUnknown: false,
        restart: false,
      };
    else if (state.status === "suspending") command = { type: "RecordSuspended" };
    if (!command) return;
    this.machinesHandler
      .handle(aggregateId, command, { commandId: `agent-${command.type}-${aggregateId}-${seq}` })
      .catch((err: unknown) => this.agentErrors.push(err));
  }
}
