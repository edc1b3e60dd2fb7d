import { decryptSecret, encryptSecret, type MasterKeys, newDataKey } from "./envelope.js";

/**
 * Build secrets (`hangar deploy --build-secret`) as the BUILDS stream carries them: a data key of
 * the build's own, wrapped by the master key, and each value encrypted under it, bound to the build
 * and the secret's id, so no value is readable in the stream or movable to another build.
 */
export interface SealedBuildSecrets {
  masterKeyId: string;
  wrappedKey: Uint8Array;
  values: Record<string, Uint8Array>;
}

/** The scope a build's secrets are sealed in. */
export function scopeOfBuild(app: string, buildId: string): string {
  return `build:${app}/${buildId}`;
}

/** Seals a build's secrets for its BuildRequested. */
export function sealBuildSecrets(
  keys: MasterKeys,
  app: string,
  buildId: string,
  values: Record<string, string>,
): SealedBuildSecrets {
  const scope = scopeOfBuild(app, buildId);
  const dataKey = newDataKey();
  const wrapped = keys.wrap(dataKey, scope);
  const sealed: Record<string, Uint8Array> = {};
  for (const [id, value] of Object.entries(values)) sealed[id] = encryptSecret(dataKey, scope, id, value);
  return { masterKeyId: wrapped.keyId, wrappedKey: wrapped.wrapped, values: sealed };
}

/** Opens a build's sealed secrets; throws SecretsCryptoError when they were sealed for another build or key. */
export function openBuildSecrets(
  keys: MasterKeys,
  app: string,
  buildId: string,
  sealed: SealedBuildSecrets,
): Record<string, string> {
  const scope = scopeOfBuild(app, buildId);
  const dataKey = keys.unwrap({ keyId: sealed.masterKeyId, wrapped: sealed.wrappedKey }, scope);
  const out: Record<string, string> = {};
  for (const [id, box] of Object.entries(sealed.values)) out[id] = decryptSecret(dataKey, scope, id, box);
  return out;
}
