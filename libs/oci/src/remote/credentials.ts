/** A user name and password (or token) for one registry. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Docker's config.json shape, as the org secret HANGAR_REGISTRY_AUTH holds it. */
export interface DockerAuthConfig {
  auths: Record<string, { auth?: string; username?: string; password?: string }>;
}

/** The name of the org secret holding an org's registry credentials. */
export const REGISTRY_AUTH_SECRET = "HANGAR_REGISTRY_AUTH";

/** Docker Hub's names in config.json files: all mean docker.io. */
const DOCKER_HUB = ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"];

/** Parses a HANGAR_REGISTRY_AUTH value; a value of another shape is an Error saying what is expected. */
export function parseDockerAuthConfig(json: string): DockerAuthConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new Error(
      `${REGISTRY_AUTH_SECRET} is not JSON; expected {"auths":{"<host>":{"auth":"<base64 user:pass>"}}}`,
    );
  }
  const auths = (doc as { auths?: unknown })?.auths;
  if (typeof auths !== "object" || auths === null || Array.isArray(auths)) {
    throw new Error(
      `${REGISTRY_AUTH_SECRET} has no "auths" object; expected {"auths":{"<host>":{"auth":"..."}}}`,
    );
  }
  return { auths: auths as DockerAuthConfig["auths"] };
}

/** The credentials a Docker auth config holds for `host`, or undefined. docker.io matches Docker Hub's other names. */
export function credentialsFor(config: DockerAuthConfig, host: string): RegistryCredentials | undefined {
  const names = DOCKER_HUB.includes(host) ? DOCKER_HUB : [host];
  for (const name of names) {
    const entry = config.auths[name];
    if (entry === undefined) continue;
    if (entry.username !== undefined && entry.password !== undefined) {
      return { username: entry.username, password: entry.password };
    }
    if (entry.auth === undefined) continue;
    const decoded = Buffer.from(entry.auth, "base64").toString();
    const colon = decoded.indexOf(":");
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** A Docker auth config with `host`'s credentials set (or, with none, removed). */
export function withCredentials(
  config: DockerAuthConfig,
  host: string,
  creds: RegistryCredentials | undefined,
): DockerAuthConfig {
  const auths = { ...config.auths };
  delete auths[host];
  if (creds) auths[host] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") };
  return { auths };
}

/**
 * An org's credentials per registry host, from its HANGAR_REGISTRY_AUTH secret as `read` returns it
 * (undefined: the org has none): what resolveImage's `credentials` option takes, bound to an org.
 */
export function registryCredentials(
  read: (org: string) => Promise<string | undefined>,
): (org: string, host: string) => Promise<RegistryCredentials | undefined> {
  return async (org, host) => {
    const value = await read(org);
    return value === undefined ? undefined : credentialsFor(parseDockerAuthConfig(value), host);
  };
}
