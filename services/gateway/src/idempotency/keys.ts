import { createHash } from "node:crypto";

/** The request header naming an idempotency key, as Stripe and the IETF draft name it. */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

/** Set on a replayed answer: the response is the first request's, nothing was done again. */
export const IDEMPOTENT_REPLAYED_HEADER = "idempotent-replayed";

/** A key a client sends: 1 to 255 printable ASCII characters (a UUID fits). */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Whether `key` is a key the gateway accepts. */
export function isValidIdempotencyKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** A route whose answer a key replays: its method and Hono pattern under `/v1`. */
export interface IdempotentRoute {
  method: string;
  path: string;
}

const MACHINE = "/v1/apps/:app_name/machines/:machine_id";

/**
 * The mutations a key covers. Each one's backend derives what it makes from the key's operation id
 * (RequestContext.operationId): the machine id, the volume's command id, the event store command id.
 * So a request taken over from a gateway that died midway meets what the first one made instead of
 * making it twice. Elsewhere the header is ignored.
 */
export const IDEMPOTENT_ROUTES: readonly IdempotentRoute[] = [
  { method: "POST", path: "/v1/apps" },
  { method: "POST", path: "/v1/apps/:app_name/machines" },
  { method: "POST", path: MACHINE },
  { method: "DELETE", path: MACHINE },
  { method: "POST", path: `${MACHINE}/start` },
  { method: "POST", path: `${MACHINE}/stop` },
  { method: "POST", path: `${MACHINE}/restart` },
  { method: "POST", path: `${MACHINE}/suspend` },
  { method: "POST", path: `${MACHINE}/metadata/:key` },
  { method: "DELETE", path: `${MACHINE}/metadata/:key` },
  { method: "POST", path: "/v1/apps/:app_name/volumes" },
  // A release the platform carries out runs its release_command once: a retried POST is the same release.
  { method: "POST", path: "/v1/apps/:app_name/releases" },
];

const compiled = IDEMPOTENT_ROUTES.map((route) => ({
  method: route.method,
  regex: new RegExp(`^${route.path.replace(/:(\w+)/g, "[^/]+")}/?$`),
}));

/** Whether a key on this request is honoured (IDEMPOTENT_ROUTES). */
export function isIdempotentRoute(method: string, path: string): boolean {
  return compiled.some((r) => r.method === method && r.regex.test(path));
}

/**
 * Who a key belongs to: the exact credential sent (the Authorization header's value), so an
 * attenuated token (which keeps its parent's id, with fewer rights) never shares its parent's
 * records; the org and token id are in the digest as well.
 */
export interface KeyScope {
  org: string | undefined;
  tokenId: string;
  credential: string;
}

/**
 * The KV key of a caller's idempotency key: a digest of the scope and the key, so one tenant's key
 * never names another's record, and any key text fits a KV key.
 */
export function recordKeyOf(scope: KeyScope, key: string): string {
  return sha256(
    JSON.stringify(["idempotency", scope.org ?? null, scope.tokenId, sha256(scope.credential), key]),
  );
}

/**
 * What makes two requests "the same request": method, path, query and body. A JSON body counts by
 * its content (key order and spacing do not matter); any other body by its bytes.
 */
export function requestFingerprint(method: string, pathAndQuery: string, body: string): string {
  return sha256(JSON.stringify([method, pathAndQuery, canonicalBody(body)]));
}

function canonicalBody(body: string): string {
  if (body.trim() === "") return "";
  try {
    return `json:${canonicalJson(JSON.parse(body))}`;
  } catch {
    return `raw:${body}`;
  }
}

/** JSON with object keys sorted at every depth. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Error codes (the body's `status`) that say "not now" or "not you", never the request's final answer. */
const PASSING_CODES = new Set([
  "unauthenticated",
  "permission_denied",
  "deadline_exceeded",
  "aborted",
  "conflict",
  "insufficient_capacity",
  "rate_limited",
  "unavailable",
]);

/**
 * Whether an answer is kept for replay. A success, and a refusal that asking again would repeat
 * (bad input, not found, a wrong state), are the request's answer. A 401/403, 408, 409, 425, 429,
 * an answer whose error code passes (PASSING_CODES: insufficient_capacity is a 422) and any 5xx are
 * not: the key is released, and a retry acts again (with the same derived ids).
 */
export function isRecordedStatus(status: number, errorCode?: string): boolean {
  if (status >= 200 && status < 300) return true;
  if (errorCode !== undefined && PASSING_CODES.has(errorCode)) return false;
  return status >= 400 && status < 500 && ![401, 403, 408, 409, 425, 429].includes(status);
}

/**
 * The id a request's backend derives what it makes from: one per (record, attempt nonce), so the
 * same key used again after its record expired acts anew instead of meeting an old command id.
 */
export function operationIdOf(recordKey: string, nonce: string): string {
  return sha256(`${recordKey}/${nonce}`).slice(0, 32);
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
