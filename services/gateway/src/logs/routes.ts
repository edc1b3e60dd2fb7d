import { MachineIdSchema, RegionSchema, validate } from "@hangar/config";
import type { MachineLogLine } from "@hangar/service";
import { type Context, Hono } from "hono";
import type { ApiEnv } from "../http/context.js";
import { ApiError } from "../http/errors.js";
import { appFor } from "../http/params.js";
import { flag, invalid, quoted } from "../http/query.js";
import type { LogFilter, LogsReader } from "./app-logs.js";
import { toLogEntry } from "./entry.js";

/** Recent lines per machine unless `limit` says otherwise, and the most it may say. */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1_000;

/** `machine_id` (or Fly's `instance`) and `region`, checked: they become NATS subject tokens. */
function logFilter(c: Context): LogFilter {
  const machine = c.req.query("machine_id") || undefined;
  const instance = c.req.query("instance") || undefined;
  if (machine !== undefined && instance !== undefined && machine !== instance)
    throw invalid("instance", "names another machine than machine_id");
  const filter: LogFilter = {};
  const machineId = machine ?? instance;
  if (machineId !== undefined) {
    const checked = validate(MachineIdSchema, machineId);
    if (!checked.ok) throw invalid(machine !== undefined ? "machine_id" : "instance", checked.message);
    filter.machineId = checked.value;
  }
  const region = c.req.query("region") || undefined;
  if (region !== undefined) {
    const checked = validate(RegionSchema, region);
    if (!checked.ok) throw invalid("region", checked.message);
    filter.region = checked.value;
  }
  return filter;
}

function limitOf(c: Context): number {
  const raw = c.req.query("limit");
  if (raw === undefined) return DEFAULT_LIMIT;
  const limit = Number(raw);
  if (!/^\d+$/.test(raw) || limit < 1 || limit > MAX_LIMIT)
    throw invalid("limit", `expected a whole number from 1 to ${MAX_LIMIT}, received ${quoted(raw)}`);
  return limit;
}

/** One line as Server-Sent Events frame it: the machine and line number as its id. */
function sseFrame(line: MachineLogLine): string {
  return `id: ${line.machine_id}:${line.seq}\nevent: log\ndata: ${JSON.stringify(toLogEntry(line))}\n\n`;
}

function ndjsonLine(line: MachineLogLine): string {
  return `${JSON.stringify(toLogEntry(line))}\n`;
}

/**
 * `GET /apps/{app}/logs` (Fly's log shape): the recent lines of the app's machines (`limit` per
 * machine, 100 by default), oldest first, then new lines as they are printed, until the client goes
 * away; with `no_tail=true` (or `follow=false`) only the recent lines. Filters: `machine_id` (or
 * `instance`) and `region`. NDJSON, or Server-Sent Events when the client accepts `text/event-stream`.
 */
export function logRoutes(reader: LogsReader): Hono<ApiEnv> {
  return new Hono<ApiEnv>().get("/apps/:app_name/logs", (c) => {
    const app = appFor(c, "read");
    const filter = logFilter(c);
    const limit = limitOf(c);
    const follow = !flag(c, "no_tail") && (c.req.query("follow") === undefined || flag(c, "follow"));
    if (!reader.appExists(app)) throw ApiError.of("not_found", `app ${app} not found`);
    if (filter.machineId !== undefined && !reader.machineExists(app, filter.machineId))
      throw ApiError.of("not_found", `machine ${filter.machineId} not found in app ${app}`);
    const sse = (c.req.header("accept") ?? "").includes("text/event-stream");
    const frame = sse ? sseFrame : ndjsonLine;
    // Ends the read (and its NATS subscription) when the client goes away or the body is cancelled.
    const done = new AbortController();
    const signal = AbortSignal.any([c.req.raw.signal, done.signal]);
    const lines = reader.logs(app, filter, { limit, follow, signal })[Symbol.asyncIterator]();
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = await lines.next();
          if (next.done) controller.close();
          else controller.enqueue(encoder.encode(frame(next.value)));
        } catch (err) {
          controller.error(err);
        }
      },
      async cancel() {
        done.abort();
        await lines.return?.(undefined);
      },
    });
    return c.body(body, 200, {
      "content-type": sse ? "text/event-stream" : "application/x-ndjson",
      "cache-control": "no-cache",
    });
  });
}
