import { splitShellWords, TUNNEL_PROTOCOL } from "@hangar/config";
import type { TunnelTarget } from "@hangar/service";
import { type Context, Hono } from "hono";
import type { ApiEnv } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { appFor, MACHINE_PATH, machineParam } from "../http/params.js";
import { flag, invalid, quoted } from "../http/query.js";
import type { TunnelOpener } from "./host-tunnels.js";

/** The shell of `hangar ssh console` without a command, as Fly's: a login shell. */
export const DEFAULT_CONSOLE_COMMAND = ["/bin/sh", "-l"];
/** A console's terminal size when the client gives none, and the largest it may ask for. */
const DEFAULT_COLS = 80;
const DEFAULT_ROWS = 24;
const MAX_TERMINAL = 1000;

/** A whole number query parameter from `min` to `max`, or `fallback` when absent. */
function intParam(c: Context, name: string, min: number, max: number, fallback?: number): number {
  const value = c.req.query(name);
  if (value === undefined || value === "") {
    if (fallback === undefined) throw invalid(name, `required: a whole number from ${min} to ${max}`);
    return fallback;
  }
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw invalid(name, `expected a whole number from ${min} to ${max}, received ${quoted(value)}`);
  return n;
}

/** What a console request runs: `cmd` (one command line, split as a shell would), or a login shell. */
export function consoleTarget(c: Context): TunnelTarget {
  const line = c.req.query("cmd");
  const command = line === undefined || line.trim() === "" ? DEFAULT_CONSOLE_COMMAND : splitShellWords(line);
  if (command.length === 0 || command.some((arg) => arg.includes("\0")))
    throw invalid("cmd", "expected a command line without NUL characters");
  return {
    kind: "exec",
    command,
    tty: flag(c, "tty"),
    cols: intParam(c, "cols", 1, MAX_TERMINAL, DEFAULT_COLS),
    rows: intParam(c, "rows", 1, MAX_TERMINAL, DEFAULT_ROWS),
  };
}

/** The port of a port tunnel request. */
export const portTarget = (c: Context): TunnelTarget => ({
  kind: "port",
  port: intParam(c, "port", 1, 65535),
});

/**
 * Tunnels into machines, for `hangar proxy` and `hangar ssh console`, as HTTP upgrades
 * (`Connection: Upgrade`, `Upgrade: hangar-tunnel`, answered by 101 and then raw bytes):
 * `GET /apps/{app}[/machines/{id}]/tunnel?port=N` reaches a TCP port of the machine;
 * `GET /apps/{app}[/machines/{id}]/console?cmd=&tty=&cols=&rows=` runs a command (a login shell by
 * default) inside it, its output framed (see @hangar/config's tunnel). Without a machine, any
 * started machine of the app.
 */
export function tunnelRoutes(tunnels: TunnelOpener): Hono<ApiEnv> {
  const handler =
    (target: (c: Context) => TunnelTarget, withMachine: boolean) => async (c: Context<ApiEnv>) => {
      // Hono runs GET handlers for HEAD too, and Node hands a HEAD with Connection: Upgrade to the
      // upgrade path; but middlewares (the audit among them) see "HEAD", so only a GET may open one.
      if (c.req.method !== "GET")
        throw ApiError.of(
          "invalid_argument",
          `this endpoint is a tunnel: open it with GET, not ${c.req.method}`,
        );
      const app = appFor(c, "exec");
      const machineId = withMachine ? machineParam(c) : undefined;
      const upgrade = c.env?.upgrade;
      if (!upgrade || c.req.header("upgrade")?.toLowerCase() !== TUNNEL_PROTOCOL)
        throw ApiError.of(
          "invalid_argument",
          `this endpoint is a tunnel: send Connection: Upgrade and Upgrade: ${TUNNEL_PROTOCOL}`,
        );
      const what = target(c);
      return upgrade.accept(await tunnels.open(app, machineId, what));
    };
  return new Hono<ApiEnv>()
    .get(`${MACHINE_PATH}/tunnel`, handler(portTarget, true))
    .get(`${MACHINE_PATH}/console`, handler(consoleTarget, true))
    .get("/apps/:app_name/tunnel", handler(portTarget, false))
    .get("/apps/:app_name/console", handler(consoleTarget, false));
}
