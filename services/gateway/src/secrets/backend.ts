import {
  appSecretsId,
  orgSecretsId,
  type SecretsCommand,
  type SecretsEvent,
  type SecretsState,
  secretsDecider,
  secretsStream,
} from "@hangar/domain";
import { type AggregateStream, CommandHandler, type EventStore } from "@hangar/eventstore";
import { type MasterKeys, scopeOfApp, scopeOfOrg, type WrappedKey } from "@hangar/secrets";
import { AggregateView, handleThenWait, sealSecrets, secretsDataKey } from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import { newUlid } from "../builds/ids.js";
import type { RequestContext } from "../http/backend.js";
import { ApiError } from "../http/errors.js";
import type {
  SecretScope,
  SecretsBackend,
  SecretsListing,
  SecretsUpdate,
  SecretView,
} from "../http/secrets-backend.js";

type SecretsView = AggregateView<SecretsState, SecretsCommand, SecretsEvent>;

const iso = (ms: number) => new Date(ms).toISOString();

/** The aggregate id and the crypto scope of an app's or org's secrets. */
function idsOf(scope: SecretScope): { aggregateId: string; crypto: string } {
  return scope.kind === "app"
    ? { aggregateId: appSecretsId(scope.name), crypto: scopeOfApp(scope.name) }
    : { aggregateId: orgSecretsId(scope.name), crypto: scopeOfOrg(scope.name) };
}

/** A scope's secrets as the API lists them, by name: the deployed ones, then staged changes over them. */
export function listingOf(state: SecretsState | undefined): SecretsListing {
  if (!state) return { secrets: [], version: 0 };
  const rows = new Map<string, SecretView>();
  for (const s of Object.values(state.deployed)) {
    rows.set(s.name, {
      name: s.name,
      digest: s.digest,
      status: "deployed",
      created_at: iso(s.createdAtMs),
      updated_at: iso(s.updatedAtMs),
    });
  }
  for (const c of Object.values(state.staged)) {
    const before = state.deployed[c.name];
    rows.set(c.name, {
      name: c.name,
      digest: c.value?.digest ?? null,
      status: c.value ? "staged" : "unset_staged",
      created_at: iso(before?.createdAtMs ?? c.atMs),
      updated_at: iso(c.atMs),
    });
  }
  const secrets = [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
  return { secrets, version: state.version };
}

/**
 * The secrets API over the SECRETS stream: values are sealed here, with the scope's data key (made on
 * the first set), and only ciphertext and digests are appended. Reads come from a folded view.
 */
export class StreamSecretsBackend implements SecretsBackend {
  private readonly handler: CommandHandler<SecretsState, SecretsCommand, SecretsEvent>;

  private constructor(
    private readonly view: SecretsView,
    private readonly keys: MasterKeys | undefined,
    store: EventStore,
    stream: AggregateStream<SecretsEvent>,
  ) {
    this.handler = new CommandHandler(store, stream, secretsDecider);
  }

  /**
   * Follows the stream, then rewraps every data key still sealed by a previous master key (an event
   * each), so that key can be retired once the gateway has started.
   */
  static async start(
    store: EventStore,
    keys: MasterKeys | undefined,
    logger: Logger,
    stream: AggregateStream<SecretsEvent> = secretsStream,
  ): Promise<StreamSecretsBackend> {
    const view = await AggregateView.start(store, stream, secretsDecider);
    await view.caughtUp;
    const backend = new StreamSecretsBackend(view, keys, store, stream);
    await backend.rewrapAll(logger);
    return backend;
  }

  /**
   * Rewraps the data keys sealed by a previous master key. One that no configured key opens is
   * logged and left as it is (its secrets stay sealed until that key is configured again): the
   * gateway still starts.
   */
  private async rewrapAll(logger: Logger): Promise<void> {
    const keys = this.keys;
    if (!keys) return;
    let rewrapped = 0;
    for (const [aggregateId, state] of [...this.view.entries()]) {
      const dataKey = state.dataKey;
      if (!dataKey || keys.isCurrent({ keyId: dataKey.masterKeyId, wrapped: dataKey.wrappedKey })) continue;
      const [kind, ...rest] = aggregateId.split(".");
      const crypto = kind === "org" ? scopeOfOrg(rest.join(".")) : scopeOfApp(rest.join("."));
      let next: WrappedKey;
      try {
        next = keys.rewrap({ keyId: dataKey.masterKeyId, wrapped: dataKey.wrappedKey }, crypto);
      } catch (err) {
        logger.error(
          { err, secrets: aggregateId, master_key_id: dataKey.masterKeyId },
          "secrets data key not rewrapped: no configured master key opens it (add it to HANGAR_SECRETS_PREVIOUS_KEYS)",
        );
        continue;
      }
      await this.handle(aggregateId, {
        type: "RewrapDataKey",
        masterKeyId: next.keyId,
        wrappedKey: next.wrapped,
        previousMasterKeyId: dataKey.masterKeyId,
        atMs: Date.now(),
      });
      rewrapped++;
    }
    if (rewrapped > 0)
      logger.info({ rewrapped, master_key_id: keys.currentId }, "secrets data keys rewrapped");
  }

  list(scope: SecretScope): SecretsListing {
    return listingOf(this.view.get(idsOf(scope).aggregateId));
  }

  async update(scope: SecretScope, update: SecretsUpdate, ctx: RequestContext): Promise<SecretsListing> {
    const { aggregateId, crypto } = idsOf(scope);
    const entries = Object.entries(update.values);
    if (entries.length === 0) {
      if (update.stage) throw ApiError.of("invalid_argument", "values: nothing to stage");
      await this.handle(aggregateId, { type: "DeployStagedSecrets", atMs: Date.now() }, ctx);
      return this.list(scope);
    }
    const state = this.view.get(aggregateId);
    for (const [name, value] of entries) {
      // Unsetting what is not there would only roll the machines for nothing.
      if (value === null && !state?.deployed[name] && !state?.staged[name]) {
        throw ApiError.of("not_found", `secret ${name} not found`);
      }
    }
    const dataKey = await secretsDataKey(this.keys, {
      crypto,
      state: () => this.view.get(aggregateId),
      record: (command) => this.handle(aggregateId, command, ctx),
    });
    const set = sealSecrets(
      dataKey,
      crypto,
      entries.flatMap(([name, value]) => (value === null ? [] : [[name, value] as const])),
    );
    const unset = entries.filter(([, value]) => value === null).map(([name]) => name);
    await this.handle(
      aggregateId,
      { type: "UpdateSecrets", set, unset, staged: update.stage, atMs: Date.now() },
      ctx,
    );
    return this.list(scope);
  }

  async unset(scope: SecretScope, name: string, ctx: RequestContext): Promise<{ version: number }> {
    const { aggregateId } = idsOf(scope);
    const state = this.view.get(aggregateId);
    if (!state?.deployed[name]) throw ApiError.of("not_found", `secret ${name} not found`);
    await this.handle(
      aggregateId,
      { type: "UpdateSecrets", set: [], unset: [name], staged: false, atMs: Date.now() },
      ctx,
    );
    return { version: this.view.get(aggregateId)?.version ?? 0 };
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }

  private async handle(aggregateId: string, command: SecretsCommand, ctx?: RequestContext): Promise<void> {
    await handleThenWait(this.handler, this.view, aggregateId, command, {
      commandId: `${command.type}-${newUlid()}`,
      ...(ctx ? { correlationId: ctx.requestId } : {}),
    });
  }
}
