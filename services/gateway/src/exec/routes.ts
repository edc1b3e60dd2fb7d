import { splitShellWords } from "@hangar/config";
import type { ProcessStat } from "@hangar/service";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { readBody } from "../http/body.js";
import type { ApiEnv } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { MACHINE_PATH, machineTarget } from "../http/params.js";
import { invalid, quoted } from "../http/query.js";
import type { MachineInspector } from "./inspector.js";

/** An exec's timeout in seconds when the request gives none (or 0, which Go clients send for none). */
export const DEFAULT_EXEC_TIMEOUT_S = 30;
/** The longest timeout an exec may ask for: it holds an HTTP request and a host's attention that long. */
export const MAX_EXEC_TIMEOUT_S = 60;

/**
 * Fly's MachineExecRequest: `command` (an argv), or the deprecated `cmd` (one line, which flyctl
 * sends, split as a shell would without expanding anything), and `timeout` in seconds. `stdin` (newer
 * fly-go) is refused rather than silently dropped; other fields (`container`) are ignored.
 */
const ExecRequestSchema = z.object({
  command: z.array(z.string()).optional(),
  cmd: z.string().optional(),
  timeout: z.number().optional(),
  stdin: z.string().optional(),
});

/** The argv and the timeout (ms) of a checked exec request. */
export function execRequest(body: z.output<typeof ExecRequestSchema>): {
  command: string[];
  timeoutMs: number;
} {
  if (body.stdin) throw ApiError.of("invalid_argument", "stdin: not supported; pass input in the command");
  if (body.command !== undefined && body.cmd !== undefined)
    throw ApiError.of("invalid_argument", "give either command or cmd, not both");
  const command = body.command ?? splitShellWords(body.cmd ?? "");
  if (command.some((arg) => arg.includes("\0")))
    throw ApiError.of("invalid_argument", "command: an argument may not hold a NUL character");
  if (command.length === 0 || command[0] === "")
    throw ApiError.of(
      "invalid_argument",
      "command: expected a non-empty list of strings (or cmd: a command line)",
    );
  const timeout = body.timeout ?? 0;
  if (!Number.isInteger(timeout) || timeout < 0 || timeout > MAX_EXEC_TIMEOUT_S)
    throw ApiError.of(
      "invalid_argument",
      `timeout: expected whole seconds from 1 to ${MAX_EXEC_TIMEOUT_S} (0 or none: ${DEFAULT_EXEC_TIMEOUT_S}), received ${timeout}`,
    );
  return { command, timeoutMs: (timeout === 0 ? DEFAULT_EXEC_TIMEOUT_S : timeout) * 1000 };
}

const SORT_KEYS = ["pid", "command", "directory", "rss", "cpu", "stime", "rtime"] as const;
type SortKey = (typeof SORT_KEYS)[number];

/** `sort_by` (a ProcessStat field, default pid) and `order` (asc or desc, default asc) of `GET .../ps`. */
function psOrder(c: Context): (a: ProcessStat, b: ProcessStat) => number {
  const by = c.req.query("sort_by") || "pid";
  if (!(SORT_KEYS as readonly string[]).includes(by))
    throw invalid("sort_by", `expected one of ${SORT_KEYS.join(", ")}, received ${quoted(by)}`);
  const order = c.req.query("order") || "asc";
  if (order !== "asc" && order !== "desc")
    throw invalid("order", `expected asc or desc, received ${quoted(order)}`);
  const key = by as SortKey;
  const sign = order === "asc" ? 1 : -1;
  return (a, b) => {
    const x = a[key];
    const y = b[key];
    const cmp = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return sign * cmp || a.pid - b.pid;
  };
}

/**
 * `POST /apps/{app}/machines/{id}/exec` (runs a command inside a started machine and answers
 * `{stdout, stderr, exit_code, exit_signal}`) and `GET .../ps` (its processes, Fly's ProcessStat list).
 */
export function execRoutes(inspector: MachineInspector): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .post(`${MACHINE_PATH}/exec`, async (c) => {
      const [app, id] = machineTarget(c, "exec");
      const { command, timeoutMs } = execRequest(await readBody(c, ExecRequestSchema));
      return c.json(await inspector.exec(app, id, command, timeoutMs));
    })
    .get(`${MACHINE_PATH}/ps`, async (c) => {
      const [app, id] = machineTarget(c, "exec");
      const order = psOrder(c);
      return c.json((await inspector.ps(app, id)).sort(order));
    });
}
