import { ApiError } from "./api.js";
import { CliError } from "./cli-error.js";

const TOKEN_HINT =
  "the API token was refused: check HANGAR_API_TOKEN, or the token in $HANGAR_HOME/local.json matches the running platform (restart `npm start` rewrites it)";

const CAPACITY_HINT =
  "no host has room for this machine (not enough free CPU or memory): stop or destroy machines, or ask for less with --cpus/--memory";

/** Decodes the app, the kind of thing below it and its id from an API path such as /apps/web/machines/3d8d/stop. */
function target(path: string): { app?: string; kind?: string; id?: string } {
  const m = /^\/apps\/([^/?]+)(?:\/([^/?]+)(?:\/([^/?]+))?)?/.exec(path);
  return {
    ...(m?.[1] ? { app: decodeURIComponent(m[1]) } : {}),
    ...(m?.[2] ? { kind: m[2] } : {}),
    ...(m?.[3] ? { id: decodeURIComponent(m[3]) } : {}),
  };
}

/** A hint for an API error the user can do something about, if there is one. */
export function hintFor(err: ApiError): string | undefined {
  if (err.httpStatus === 401) return TOKEN_HINT;
  if (err.code === "insufficient_capacity") return CAPACITY_HINT;
  if (err.httpStatus !== 404) return undefined;
  const { app, kind, id } = target(err.path);
  if (!app) return undefined;
  // Below /apps/{app}/<kind>/{id} a 404 can mean either; the API's message tells which.
  const appMissing = /\bapp\b/i.test(err.message) && !/machine|build|release|volume/i.test(err.message);
  const appHint = `app ${app} not found: create it with \`hangar apps create ${app}\``;
  if (kind === "machines" && id && !appMissing) {
    return `machine ${id} not found in app ${app}: list them with \`hangar machine list -a ${app}\``;
  }
  if (kind === "volumes" && id && !appMissing) {
    return `volume ${id} not found in app ${app}: list them with \`hangar volumes list -a ${app}\``;
  }
  if (kind !== undefined && kind !== "machines" && !appMissing) return undefined;
  return appHint;
}

/** The lines to print on stderr for an error: `Error: <message>` and maybe a hint. */
export function describeError(err: unknown): string[] {
  const message = err instanceof Error ? err.message : String(err);
  const lines = [`Error: ${message}`];
  const hint = err instanceof ApiError ? hintFor(err) : err instanceof CliError ? err.hint : undefined;
  if (hint) lines.push(hint);
  return lines;
}

/** Gives an error a hint unless it already has one of its own. */
export function withHint(err: unknown, hint: string): Error {
  if (err instanceof ApiError && hintFor(err)) return err;
  if (err instanceof CliError && err.hint) return err;
  return new CliError(err instanceof Error ? err.message : String(err), hint);
}
