import {
  appSecretsId,
  orgSecretsId,
  type SecretsCommand,
  type SecretsEvent,
  type SecretsState,
  secretsDecider,
  secretsStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { decryptSecret, type MasterKeys, scopeOfApp, scopeOfOrg } from "@hangar/secrets";
import { AggregateView } from "./aggregate-view.js";

/**
 * The orgs' secrets (sealed, as the SECRETS stream holds them) for the services that act for an org
 * without a request of its own: the builder and host agents read an org's registry credentials
 * (HANGAR_REGISTRY_AUTH) when they pull its images. Opened one value at a time, just in time.
 * With kind "app", the apps' secrets instead: the builder's RUN --mount=type=secret reads them.
 */
export class OrgSecrets {
  private constructor(
    private readonly view: AggregateView<SecretsState, SecretsCommand, SecretsEvent>,
    private readonly keys: MasterKeys | undefined,
    private readonly store: EventStore,
    private readonly stream: AggregateStream<SecretsEvent>,
    private readonly kind: "org" | "app",
  ) {}

  /** Follows the orgs' secrets (ev.secret.org.>) and resolves once caught up. */
  static async start(
    store: EventStore,
    keys: MasterKeys | undefined,
    opts: { stream?: AggregateStream<SecretsEvent>; kind?: "org" | "app" } = {},
  ): Promise<OrgSecrets> {
    const stream = opts.stream ?? secretsStream;
    const kind = opts.kind ?? "org";
    const view = AggregateView.create(store, stream, secretsDecider, {
      filter: `${stream.subjectPrefix}.${kind}.>`,
    });
    await view.follow();
    await view.caughtUp;
    return new OrgSecrets(view, keys, store, stream, kind);
  }

  /**
   * The org's secret `name`, decrypted, once this service has folded every change the gateway has
   * acknowledged for the org; undefined when the org has no such secret. Throws when it has one and
   * this service has no master key that opens it.
   */
  async read(org: string, name: string): Promise<string | undefined> {
    const id = this.kind === "org" ? orgSecretsId(org) : appSecretsId(org);
    const last = await this.store.lastSequence(this.stream, id);
    if (last > this.view.seqOf(id)) await this.view.waitForSeq(last);
    const state = this.view.get(id);
    const secret = state?.deployed[name];
    if (!state?.dataKey || !secret) return undefined;
    if (!this.keys) {
      throw new Error(
        `${this.kind} ${org} has the secret ${name} and this service has no master key (HANGAR_SECRETS_KEY or HANGAR_SECRETS_KEY_FILE)`,
      );
    }
    const scope = this.kind === "org" ? scopeOfOrg(org) : scopeOfApp(org);
    const dataKey = this.keys.unwrap(
      { keyId: state.dataKey.masterKeyId, wrapped: state.dataKey.wrappedKey },
      scope,
    );
    return decryptSecret(dataKey, scope, name, secret.ciphertext);
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}
