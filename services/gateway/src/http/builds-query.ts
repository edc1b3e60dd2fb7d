import type { Context } from "hono";
import type { BuildOptions } from "./builds-backend.js";
import { flag, invalid, quoted } from "./query.js";

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function dockerfile(c: Context): string | undefined {
  const path = c.req.query("dockerfile") || undefined;
  if (path === undefined) return undefined;
  // The builder reads it from inside the context; a path out of it can only be a mistake or an attack.
  if (path.startsWith("/") || path.split("/").includes("..") || path.includes("\0")) {
    throw invalid("dockerfile", `expected a relative path inside the context, received ${quoted(path)}`);
  }
  return path;
}

function target(c: Context): string | undefined {
  const stage = c.req.query("target") || undefined;
  if (stage !== undefined && !/^\S+$/.test(stage)) {
    throw invalid("target", `expected a stage name, received ${quoted(stage)}`);
  }
  return stage;
}

// `build_arg=K=V`, repeated; the value may itself hold "=".
function buildArgs(c: Context): Record<string, string> {
  const args: Record<string, string> = {};
  for (const arg of c.req.queries("build_arg") ?? []) {
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (eq < 0 || !ARG_NAME.test(name)) {
      throw invalid(
        "build_arg",
        `expected NAME=value with NAME of letters, digits and _, received ${quoted(arg)}`,
      );
    }
    args[name] = arg.slice(eq + 1);
  }
  return args;
}

/** The most a build may ask to last, in seconds: a day (the builder's own deadline caps it further). */
const MAX_TIMEOUT_S = 86_400;

function timeout(c: Context): number | undefined {
  const text = c.req.query("timeout") || undefined;
  if (text === undefined) return undefined;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > MAX_TIMEOUT_S) {
    throw invalid("timeout", `expected whole seconds from 1 to ${MAX_TIMEOUT_S}, received ${quoted(text)}`);
  }
  return Number(text);
}

/** The header that carries build secrets: base64 of a JSON object of id to value (never the query, which is logged). */
export const BUILD_SECRETS_HEADER = "hangar-build-secrets";
const SECRET_ID = /^[A-Za-z0-9_.-]{1,128}$/;

function buildSecrets(c: Context): Record<string, string> | undefined {
  const header = c.req.header(BUILD_SECRETS_HEADER);
  if (header === undefined || header === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const entries =
    parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? Object.entries(parsed) : [];
  if (entries.length === 0 || entries.some(([id, v]) => !SECRET_ID.test(id) || typeof v !== "string")) {
    throw invalid(
      BUILD_SECRETS_HEADER,
      "expected base64 of a JSON object of secret ids (letters, digits, _ . -) to string values",
    );
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/**
 * `POST .../builds`: dockerfile, target, no_cache, network, timeout (seconds), build_arg (repeatable
 * K=V); build secrets in the Hangar-Build-Secrets header.
 */
export function buildOptions(c: Context): BuildOptions {
  return {
    dockerfile: dockerfile(c),
    target: target(c),
    noCache: flag(c, "no_cache"),
    network: flag(c, "network"),
    buildArgs: buildArgs(c),
    timeoutSeconds: timeout(c),
    secrets: buildSecrets(c),
  };
}
