/** An environment variable name, as a secret's name must be (letters, digits, _; not starting with a digit). */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

/** Largest value of one secret, in bytes of UTF-8 (Fly's limit is 64 KiB too). */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;

/** Whether `name` can be a secret's name: an environment variable name. */
export function isSecretName(name: string): boolean {
  return NAME.test(name);
}

/** The scope (associated data and key derivation) of an app's secrets. */
export function scopeOfApp(app: string): string {
  return `app:${app}`;
}

/** The scope of an org's secrets; "org:" and "app:" cannot be confused. */
export function scopeOfOrg(org: string): string {
  return `org:${org}`;
}
