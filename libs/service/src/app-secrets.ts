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
import { AggregateView } from "@hangar/service";
import { Histogram, type Registry } from "prom-client";

/** A machine's secrets could not be opened: no master key here, or one that does not open them. */
export class MachineSecretsError extends Error {
  override readonly name = "MachineSecretsError";
}

/**
 * The apps' deployed secrets as the host agent needs them when a machine starts: the SECRETS stream
 * folded in memory (sealed, as the stream holds them), opened just in time for one start and handed
 * to the driver, which puts them in the machine's environment and nowhere else.
 */
export class MachineSecrets {
  private readonly injectSeconds: Histogram | undefined;

  private constructor(
    private readonly view: AggregateView<SecretsState, SecretsCommand, SecretsEvent>,
    private readonly keys: MasterKeys | undefined,
    private readonly store: EventStore,
    private readonly stream: AggregateStream<SecretsEvent>,
    registry: Registry | undefined,
  ) {
    this.injectSeconds = registry
      ? new Histogram({
          name: "hangar_host_secret_inject_seconds",
          help: "Time secrets add to one machine start: catching up with the app's secrets and opening them",
          buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05],
          registers: [registry],
        })
      : undefined;
  }

  /** Follows the apps' secrets (not the orgs': machines never get those) and resolves once caught up. */
  static async start(
    store: EventStore,
    keys: MasterKeys | undefined,
    opts: { registry?: Registry; stream?: AggregateStream<SecretsEvent> } = {},
  ): Promise<MachineSecrets> {
    const stream = opts.stream ?? secretsStream;
    const view = AggregateView.create(store, stream, secretsDecider, {
      filter: `${stream.subjectPrefix}.app.>`,
    });
    await view.follow();
    await view.caughtUp;
    return new MachineSecrets(view, keys, store, stream, opts.registry);
  }

  /**
   * The app's deployed secrets for a machine that starts now: once this host has folded every change
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
   * for an app without any. Throws MachineSecretsError when they cannot be opened (the start then
   * fails, saying why).
   */
  envOf(app: string): Record<string, string> {
    const state = this.view.get(appSecretsId(app));
    const deployed = state ? Object.values(state.deployed) : [];
    if (!state?.dataKey || deployed.length === 0) return {};
    if (!this.keys) {
      throw new MachineSecretsError(
        `app ${app} has secrets and this host has no master key (HANGAR_SECRETS_KEY or HANGAR_SECRETS_KEY_FILE)`,
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
      throw new MachineSecretsError(`the secrets of app ${app} do not open: ${(err as Error).message}`);
    }
    return env;
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}
