// The names a Postgres cluster takes: its own (an app name) and the databases and users it makes for
// attached apps. The decider, the manager, the gateway (a bad one is a 400) and the CLI (refused
// before any call) check them here. Imports only the app name pattern, so the CLI loads it alone
// (`@hangar/domain/pgcluster-names`).
import { APP_NAME_PATTERN } from "../apps/names.js";

/** A database or user name the manager creates: an unquoted Postgres identifier, lowercase, 1 to 63 bytes. */
export const PG_IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** The fewest and most members a cluster is created with. */
export const MIN_PG_CLUSTER_SIZE = 1;
export const MAX_PG_CLUSTER_SIZE = 5;

/** Why a cluster name is refused (it becomes the cluster's app name), or undefined. */
export function pgClusterNameProblem(name: string): string | undefined {
  if (!APP_NAME_PATTERN.test(name))
    return `invalid cluster name ${JSON.stringify(name)}: it is an app name, so use 1-63 lowercase letters, digits and dashes, not starting or ending with a dash`;
  return undefined;
}

/** Why a database or user name is refused (`what` says which, for the message), or undefined. */
export function pgIdentifierProblem(what: "database" | "user", name: string): string | undefined {
  if (!PG_IDENTIFIER_PATTERN.test(name))
    return `invalid ${what} name ${JSON.stringify(name)}: use 1-63 lowercase letters, digits and underscores, not starting with a digit`;
  // Postgres reserves role names that start with pg_ (and the manager names a user as its database).
  if (name.startsWith("pg_"))
    return `invalid ${what} name ${JSON.stringify(name)}: Postgres reserves names starting with pg_`;
  return undefined;
}

/** Why an initial cluster size is refused, or undefined. */
export function pgClusterSizeProblem(size: number): string | undefined {
  if (!Number.isInteger(size) || size < MIN_PG_CLUSTER_SIZE || size > MAX_PG_CLUSTER_SIZE)
    return `initial cluster size must be a whole number from ${MIN_PG_CLUSTER_SIZE} to ${MAX_PG_CLUSTER_SIZE}, not ${size}`;
  return undefined;
}

/**
 * The database and user name an attach uses by default for `app`: the app name with `-` as `_`, and
 * `_` in front when it starts with a digit (an unquoted identifier cannot) or with pg_ (Postgres
 * reserves those role names: an app named pg-app gets _pg_app).
 */
export function defaultPgIdentifier(app: string): string {
  const name = app.replaceAll("-", "_");
  return /^([0-9]|pg_)/.test(name) ? `_${name}`.slice(0, 63) : name;
}
