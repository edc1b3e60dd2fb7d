import { performance } from "node:perf_hooks";
import {
  appSecretsId,
  type SecretsCommand,
  type SecretsEvent,
  type SecretsState,
  secretsDecider,
  secretsStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { decryptSecret, type MasterKeys, scopeOfApp } from "@hangar/secrets";
import { Histogram, type Registry } from "prom-client";
import { AggregateView } from "./aggregate-view.js";

/** An app's secrets could not be opened: no master key here, or one that does not open them. */
export class AppSecretsError extends Error {
  override readonly name = "AppSecretsError";
}

/** The histogram that times each envFor: its name and help (the host agent's is hangar_host_secret_inject_seconds). */
export interface AppSecretsMetric {
  name: string;
  help: string;
}

/**
 * The apps' deployed secrets as a service that runs an app's code needs them (the host agent when a
 * machine starts, the proxy when it deploys an edge app): the SECRETS stream folded in memory
 * (sealed, as the stream holds them), opened just in time and handed to what runs the code, which
 * puts them in its environment and nowhere else.
 */
export class AppSecrets {
  private readonly injectSeconds: Histogram | undefined;

  private constructor(
    private readonly view: AggregateView<SecretsState, SecretsCommand, SecretsEvent>,
    private readonly keys: MasterKeys | undefined,
    private readonly store: EventStore,
    private readonly stream: AggregateStream<SecretsEvent>,
    registry: Registry | undefined,
    metric: AppSecretsMetric | undefined,
  ) {
    this.injectSeconds =
      registry && metric
        ? new Histogram({
            ...metric,
            buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05],
            registers: [registry],
          })
        : undefined;
  }

  /** Follows the apps' secrets (not the orgs': an app's code never gets those) and resolves once caught up. */
  static async start(
    store: EventStore,
    keys: MasterKeys | undefined,
    opts: { registry?: Registry; metric?: AppSecretsMetric; stream?: AggregateStream<SecretsEvent> } = {},
  ): Promise<AppSecrets> {
    const stream = opts.stream ?? secretsStream;
    const view = AggregateView.create(store, stream, secretsDecider, {
      filter: `${stream.subjectPrefix}.app.>`,
    });
    await view.follow();
    await view.caughtUp;
    return new AppSecrets(view, keys, store, stream, opts.registry, opts.metric);
  }

  /**
   * Calls `listener` with the app's name each time an app's secrets change after the start (a
   * `secrets set`, `deploy` or `unset`, staged ones included); returns the unsubscribe.
   */
  onChange(listener: (app: string) => void): () => void {
    return this.view.subscribe((c) => {
      if (c.live && c.aggregateId.startsWith("app.")) listener(c.aggregateId.slice("app.".length));
    });
  }

  /**
   * The app's deployed secrets for code that starts now: once this service has folded every change
   * the gateway has acknowledged for the app (one direct get of the app's last sequence), so a start
   * right after `secrets set` never misses the new values. Timed as what secrets add to a start.
   */
  async envFor(app: string): Promise<Record<string, string>> {
    const started = performance.now();
    const id = appSecretsId(app);
    const last = await this.store.lastSequence(this.stream, id);
    if (last > this.view.seqOf(id)) await this.view.waitForSeq(last);
    const env = this.envOf(app);
    this.injectSeconds?.observe((performance.now() - started) / 1000);
    return env;
  }

  /**
   * The app's deployed secrets as this host has folded them, decrypted, as environment variables; {}
   * for an app without any. Throws AppSecretsError when they cannot be opened (the start, or the edge
   * deploy, then fails saying why).
   */
  envOf(app: string): Record<string, string> {
    const state = this.view.get(appSecretsId(app));
    const deployed = state ? Object.values(state.deployed) : [];
    if (!state?.dataKey || deployed.length === 0) return {};
    if (!this.keys) {
      throw new AppSecretsError(
        `app ${app} has secrets and this service has no master key (HANGAR_SECRETS_KEY or HANGAR_SECRETS_KEY_FILE)`,
      );
    }
    const scope = scopeOfApp(app);
    const env: Record<string, string> = {};
    try {
      const dataKey = this.keys.unwrap(
        { keyId: state.dataKey.masterKeyId, wrapped: state.dataKey.wrappedKey },
        scope,
      );
      for (const s of deployed) env[s.name] = decryptSecret(dataKey, scope, s.name, s.ciphertext);
    } catch (err) {
      throw new AppSecretsError(`the secrets of app ${app} do not open: ${(err as Error).message}`);
    }
    return env;
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}
