import { routedPort } from "./scaling.js";

/**
 * What the proxy does to an app's responses, from its http port's
 * `http_options.response` (fly.toml `[http_service.http_options.response]`): headers to set and
 * headers to remove, and whether to leave out the proxy's own (pristine).
 */
export interface ResponseRules {
  /** Name and value pairs set on every response, in place of the machine's headers of those names. */
  set: readonly string[];
  /** Lower-case names removed: the ones set, and those given `false`. */
  drop: ReadonlySet<string>;
  /** No Via, Fly-Request-Id or Fly-Region from the proxy. */
  pristine: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Headers that frame the response or the connection: the proxy's and the machine's to set, never an
 * app config's (a Content-Length of the config's would split one response into two on a kept-alive
 * connection).
 */
export function isFramingHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower === "content-length" ||
    lower === "transfer-encoding" ||
    lower === "connection" ||
    lower === "keep-alive" ||
    lower === "upgrade" ||
    lower === "te" ||
    lower === "trailer" ||
    lower.startsWith("proxy-")
  );
}
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The response rules of a machine config (JSON or parsed), from the http port of the service the
 * proxy routes to (the first with an http handler, else the first): undefined when it has none.
 * A header's value is a string, a number or boolean (written as text), or a list of them (one header
 * each); `false` removes the header, as Fly's proxy does. Names and values a header cannot carry, and
 * the headers that frame the response (isFramingHeader), are left out.
 */
export function responseRules(config: unknown): ResponseRules | undefined {
  return responseRulesOf(routedPort(config)?.http_options?.response);
}

/** The response rules of an `http_options.response` table (see responseRules). */
export function responseRulesOf(table: unknown): ResponseRules | undefined {
  const response = table as
    | { headers?: Record<string, unknown> | null; pristine?: unknown }
    | null
    | undefined;
  if (!response) return undefined;
  const set: string[] = [];
  const drop = new Set<string>();
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    if (!TOKEN.test(name) || isFramingHeader(name)) continue;
    drop.add(name.toLowerCase());
    if (value === false || value === null || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      const text =
        typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;
      if (text !== undefined && VALUE.test(text)) set.push(name, text);
    }
  }
  const pristine = response.pristine === true;
  if (set.length === 0 && drop.size === 0 && !pristine) return undefined;
  return { set, drop, pristine };
}

/** Applies `rules` to a response's headers (name, value pairs), in place. */
export function applyResponseRules(headers: string[], rules: ResponseRules): void {
  if (rules.drop.size > 0) {
    let w = 0;
    for (let r = 0; r < headers.length; r += 2) {
      const name = headers[r] as string;
      if (rules.drop.has(name.toLowerCase())) continue;
      headers[w++] = name;
      headers[w++] = headers[r + 1] as string;
    }
    headers.length = w;
  }
  for (const h of rules.set) headers.push(h);
}
