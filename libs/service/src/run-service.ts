import { type AggregateStream, EventStore, ensureStream, limitLeaderReads } from "@hangar/eventstore";
import { createLogger, type Logger, startTelemetry } from "@hangar/telemetry";
import { setSha256Backend } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import type { z } from "zod";
import { onShutdown } from "./lifecycle.js";
import { connectNats, natsUserName } from "./nats.js";
import { appendsTo, natsUserOf, permissionsOf } from "./nats-permissions.js";
import { reportPermissionViolations } from "./nats-violations.js";
import { type HealthReport, startOpsServer } from "./ops-server.js";
import { readiness, watchConnection } from "./readiness.js";
import { ConfigError, type ServiceConfig, type ServiceSettings } from "./settings.js";

/** What runService hands a service's `start`. */
export interface ServiceContext<Own extends z.ZodRawShape> {
  /** The service's name, as in `services/<name>`. */
  name: string;
  nc: NatsConnection;
  store: EventStore;
  logger: Logger;
  /** The service's metrics (default label `service`), served on the ops server's /metrics. */
  registry: Registry;
  config: ServiceSettings<Own>;
  /** What the ops server's /health says now; for a second /health (the gateway's API). */
  readiness(): HealthReport;
  /**
   * Names the step of `start` under way ("replaying ROUTES"): /health says it as `starting` until the
   * service is up, and a start that takes long logs it, so a start that hangs says where.
   */
  step(what: string): void;
}

/** A started service. */
export interface RunningService {
  /** The service's own view of its health; runService adds NATS connectivity and replay. */
  health(): HealthReport;
  /** Stops what the service started; runService closes the rest afterwards. */
  stop(): Promise<void>;
  /** More GET paths of its ops server, in the Prometheus text format (the monitor's /metrics/apps). */
  textRoutes?: Readonly<Record<string, () => string>>;
}

export interface RunServiceOptions<Own extends z.ZodRawShape> {
  /** The service's name, as in `services/<name>`: names its NATS user, logger, metrics and traces. */
  name: string;
  config: ServiceConfig<Own>;
  /** The streams it reads or writes, created (or updated) with HANGAR_STREAM_REPLICAS replicas. */
  streams: AggregateStream<{ type: string }>[];
  /** For a host agent: the host it runs for, which names its NATS user. */
  hostId?(config: ServiceSettings<Own>): string;
  /** Starts the service; resolves once its views have replayed and it serves. */
  start(ctx: ServiceContext<Own>): Promise<RunningService>;
}

/** How long a start runs before it is logged as still starting (and again each time after). */
const STILL_STARTING_MS = 15_000;

/**
 * Runs a service process: settings, telemetry, logger, NATS as the service's own user, the event
 * store and its streams, metrics, the ops server (/health ready only once replayed and connected),
 * then `start`, and an ordered shutdown on SIGTERM. A bad setting or a start that throws ends the
 * process with code 1 and says why.
 */
export async function runService<Own extends z.ZodRawShape>(opts: RunServiceOptions<Own>): Promise<void> {
  // Object Store puts and gets hash with node:crypto, not the library's pure-JS SHA-256 (~18x slower).
  setSha256Backend("native");
  const warnings: string[] = [];
  let config: ServiceSettings<Own>;
  try {
    config = opts.config.load(process.env, (message) => warnings.push(message));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.name });
  // With an OTLP endpoint, the registry's metrics (what /metrics serves) are exported over OTLP too.
  const telemetry = startTelemetry({ serviceName: `hangar-${opts.name}`, metrics: registry });
  const logger = createLogger(opts.name, { level: config.LOG_LEVEL });
  for (const message of warnings) logger.warn(message);
  const hostId = opts.hostId?.(config);
  // The step of the start under way: /health says it until the service is up, and a start still
  // under way after STILL_STARTING_MS is logged (a warning) with it, then every STILL_STARTING_MS.
  const startedAt = Date.now();
  let step = "connecting to NATS";
  const stillStarting = setInterval(() => {
    logger.warn({ step, elapsed_ms: Date.now() - startedAt }, `${opts.name} still starting: ${step}`);
  }, STILL_STARTING_MS);
  stillStarting.unref();
  const nc = await connectNats(config.HANGAR_NATS_URL, `hangar-${natsUserName(opts.name, hostId)}`, {
    ...(config.HANGAR_NATS_CREDS === undefined ? {} : { credsFile: config.HANGAR_NATS_CREDS }),
    user: natsUserName(opts.name, hostId),
  });
  const connection = watchConnection(nc);
  const store = await EventStore.connect(nc);
  // Only a stream's writers update it (and its NATS user may only then); a reader creates it if missing.
  const user = natsUserOf(opts.name, hostId);
  if (user !== undefined && config.HANGAR_NATS_CREDS !== undefined) {
    // Leader reads where its grants allow them (a subject-limited reader has direct gets only).
    const publish = new Set(permissionsOf(user).publish);
    limitLeaderReads(store.jsm, (stream) => publish.has(`$JS.API.STREAM.MSG.GET.${stream}`));
  }
  for (const stream of opts.streams) {
    step = `creating or checking stream ${stream.name}`;
    await ensureStream(store.jsm, stream, {
      replicas: config.HANGAR_STREAM_REPLICAS,
      update: user === undefined || appendsTo(user, stream.name),
    });
  }
  reportPermissionViolations(nc, logger, registry);
  let service: RunningService | undefined;
  /** Set once start has resolved and its subscriptions are at the server: /health may say ready. */
  let ready = false;
  const report = () => {
    const r = readiness(ready ? service?.health() : undefined, connection);
    return ready ? r : { ...r, starting: step };
  };
  step = "starting the ops server";
  const ops = await startOpsServer({
    port: Number((config as Record<string, unknown>)[opts.config.opsPortKey]),
    host: config.HANGAR_BIND_HOST,
    service: opts.name,
    registry,
    health: report,
    textRoutes: () => (ready ? service?.textRoutes : undefined),
  });
  const closeAll = async () => {
    await service?.stop();
    await ops.close();
    store.close();
    await nc.drain();
    await telemetry.shutdown();
  };
  onShutdown(logger, closeAll);
  step = "starting";
  try {
    service = await opts.start({
      name: opts.name,
      nc,
      store,
      logger,
      registry,
      config,
      readiness: report,
      step: (what) => {
        step = what;
      },
    });
    // Ready only once the server has every subscription start made: a command sent the moment
    // /health says ready must find its responder.
    step = "flushing its subscriptions to NATS";
    await nc.flush();
    ready = true;
  } catch (err) {
    clearInterval(stillStarting);
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal({ err }, "could not start");
    process.stderr.write(`hangar-${opts.name} cannot start: ${message}\n`);
    await closeAll().catch(() => undefined);
    process.exit(1);
  }
  clearInterval(stillStarting);
  logger.info({ ops: `${config.HANGAR_BIND_HOST}:${ops.port}` }, `${opts.name} ready`);
}
