import { durationToMs, StopSignalSchema, validate } from "@hangar/config";
import { machineMetadataIssue } from "@hangar/domain";
import type { Context } from "hono";
import {
  MACHINE_STATES,
  type MachineListFilter,
  type MachineState,
  type RestartOptions,
  WAIT_STATES,
  type WaitOptions,
  type WaitState,
} from "./backend.js";
import { ApiError } from "./errors.js";

const WAIT_TIMEOUT_MAX_S = 60;

/** A 422 naming the query parameter. */
export const invalid = (name: string, message: string): ApiError =>
  ApiError.of("invalid_argument", `${name}: ${message}`);

/** A client's value, shortened, for an error message. */
export const quoted = (value: string): string =>
  JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value);

function one(c: Context, name: string): string | undefined {
  return c.req.query(name) || undefined;
}

/** A true/false query parameter. */
export function flag(c: Context, name: string): boolean {
  const value = c.req.query(name);
  if (value === undefined || value === "false" || value === "0") return false;
  // A bare `?force` counts as true.
  if (value === "" || value === "true" || value === "1") return true;
  throw invalid(name, `expected true or false, received ${quoted(value)}`);
}

// Fly clients repeat the parameter (`state=a&state=b`); people write `state=a,b`. Both work.
function oneOf<T extends string>(c: Context, name: string, allowed: readonly T[]): T[] {
  const values = (c.req.queries(name) ?? []).flatMap((v) => v.split(",")).map((v) => v.trim());
  return values
    .filter((v) => v !== "")
    .map((v) => {
      if (!(allowed as readonly string[]).includes(v)) {
        throw invalid(name, `expected one of ${allowed.join(", ")}, received ${quoted(v)}`);
      }
      return v as T;
    });
}

function duration(c: Context, name: string): number | undefined {
  const value = one(c, name);
  if (value === undefined) return undefined;
  try {
    const ms = durationToMs(value);
    if (ms >= 0) return ms;
  } catch {
    // reported below, with the value
  }
  throw invalid(name, `expected a duration such as "10s", or a number of seconds, received ${quoted(value)}`);
}

/** Fly's `metadata.<key>=<value>` list filters (the first value of a repeated key, as for region). */
function metadataFilter(c: Context): Record<string, string> {
  const filter: Record<string, string> = {};
  for (const name of Object.keys(c.req.queries())) {
    if (!name.startsWith("metadata.")) continue;
    const key = name.slice("metadata.".length);
    const issue = machineMetadataIssue(key);
    if (issue) throw invalid(name, issue);
    filter[key] = c.req.query(name) ?? "";
  }
  return filter;
}

/** `GET .../machines`: include_deleted, region, state (several allowed), summary, metadata.<key>. */
export function listFilter(c: Context): MachineListFilter {
  return {
    includeDeleted: flag(c, "include_deleted"),
    region: one(c, "region"),
    states: oneOf<MachineState>(c, "state", MACHINE_STATES),
    summary: flag(c, "summary"),
    metadata: metadataFilter(c),
  };
}

/** `GET .../wait`: state (default started), instance_id or version, from_event_id, timeout in seconds (1-60, default 60). */
export function waitOptions(c: Context): WaitOptions {
  const states = oneOf<WaitState>(c, "state", WAIT_STATES);
  const timeout = one(c, "timeout");
  let timeoutS = WAIT_TIMEOUT_MAX_S;
  if (timeout !== undefined) {
    timeoutS = Number(timeout);
    if (!/^\d+$/.test(timeout) || timeoutS < 1 || timeoutS > WAIT_TIMEOUT_MAX_S) {
      throw invalid(
        "timeout",
        `expected whole seconds from 1 to ${WAIT_TIMEOUT_MAX_S}, received ${quoted(timeout)}`,
      );
    }
  }
  return {
    states: states.length > 0 ? states : ["started"],
    instanceId: one(c, "instance_id") ?? one(c, "version"),
    fromEventId: one(c, "from_event_id"),
    timeoutMs: timeoutS * 1000,
  };
}

/** `POST .../restart`: signal, timeout (Go duration or seconds), force_stop. */
export function restartOptions(c: Context): RestartOptions {
  const signal = one(c, "signal");
  let parsedSignal: RestartOptions["signal"];
  if (signal !== undefined) {
    const result = validate(StopSignalSchema, signal);
    if (!result.ok) throw invalid("signal", result.message);
    parsedSignal = result.value;
  }
  return { signal: parsedSignal, timeoutMs: duration(c, "timeout"), forceStop: flag(c, "force_stop") };
}

/** `DELETE .../machines/{id}`: `force`, or `kill` as fly-go sends it. */
export function destroyOptions(c: Context): { force: boolean } {
  return { force: flag(c, "force") || flag(c, "kill") };
}

/** `POST .../lease`: `ttl` in seconds, which fly-go sends in the query rather than the body. */
export function leaseTtl(c: Context): number | undefined {
  const ttl = one(c, "ttl");
  if (ttl === undefined) return undefined;
  if (!/^\d+$/.test(ttl) || Number(ttl) < 1) {
    throw invalid("ttl", `expected whole seconds, at least 1, received ${quoted(ttl)}`);
  }
  return Number(ttl);
}
