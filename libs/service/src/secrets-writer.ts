import type { SecretsCommand, SecretsState } from "@hangar/domain";
import { DomainError } from "@hangar/eventstore";
import { digestKey, encryptSecret, type MasterKeys, newDataKey, secretDigest } from "@hangar/secrets";

/** A secret as the SECRETS stream records it: ciphertext and digest, never the value. */
export interface SealedSecret {
  name: string;
  ciphertext: Uint8Array;
  digest: string;
}

/** What sealing a scope's secrets needs: its state now, and a way to record a command on it. */
export interface SecretsScopeWriter {
  /** The scope's crypto scope (scopeOfApp / scopeOfOrg), which binds its data key and values. */
  crypto: string;
  state(): SecretsState | undefined;
  /** Records a command on the scope's SECRETS aggregate and resolves once `state()` shows it. */
  record(command: SecretsCommand): Promise<void>;
}

/**
 * The scope's data key: made and recorded (sealed by the master key) on its first secret, opened
 * from the recorded one after. Used by whoever writes secrets: the gateway's secrets API and the
 * postgres manager (a cluster's credentials).
 */
export async function secretsDataKey(
  keys: MasterKeys | undefined,
  scope: SecretsScopeWriter,
): Promise<Uint8Array> {
  if (!keys) {
    throw new DomainError(
      "secrets are off: this service has no master key (set HANGAR_SECRETS_KEY or HANGAR_SECRETS_KEY_FILE)",
      "failed_precondition",
    );
  }
  if (!scope.state()?.dataKey) {
    const fresh = keys.wrap(newDataKey(), scope.crypto);
    await scope.record({
      type: "CreateDataKey",
      masterKeyId: fresh.keyId,
      wrappedKey: fresh.wrapped,
      atMs: Date.now(),
    });
  }
  const sealed = scope.state()?.dataKey;
  if (!sealed) throw new DomainError("the secrets data key was not recorded; try again", "unavailable");
  return keys.unwrap({ keyId: sealed.masterKeyId, wrapped: sealed.wrappedKey }, scope.crypto);
}

/** Seals values with the scope's data key, as UpdateSecrets records them. */
export function sealSecrets(
  dataKey: Uint8Array,
  crypto: string,
  values: ReadonlyArray<readonly [name: string, value: string]>,
): SealedSecret[] {
  const digests = digestKey(dataKey, crypto);
  return values.map(([name, value]) => ({
    name,
    ciphertext: encryptSecret(dataKey, crypto, name, value),
    digest: secretDigest(digests, value),
  }));
}
