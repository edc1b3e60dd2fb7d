import { createHash } from "node:crypto";
import { importMacaroon, type Macaroon, newMacaroon } from "macaroon";

/** What a token is for, as Fly names its kinds; the kind is a caveat of the minted macaroon. */
export type TokenKind = "operator" | "org" | "deploy" | "readonly" | "machine-exec";

export const TOKEN_KINDS: readonly TokenKind[] = ["operator", "org", "deploy", "readonly", "machine-exec"];

/** Who a verified token speaks for and what its caveats allow. */
export interface Principal {
  /** The macaroon's identifier: revocation is by this id. */
  tokenId: string;
  kind: TokenKind;
  /** Undefined only for operator tokens: every org. */
  org: string | undefined;
  /** Undefined: every app of the org; several app caveats intersect. */
  apps: ReadonlySet<string> | undefined;
  readOnly: boolean;
  /** machine-exec: only exec / console / ps of machines (and GET of those machines). */
  execOnly: boolean;
  /** Ms since epoch, the earliest expiry caveat. */
  expiresAt: number | undefined;
}

/** Why a token was refused. */
export type TokenErrorReason = "malformed" | "bad_signature" | "expired" | "unknown_caveat";

/** A token that cannot be used; `reason` says why. */
export class TokenError extends Error {
  override readonly name = "TokenError";
  constructor(
    readonly reason: TokenErrorReason,
    message: string,
  ) {
    super(message);
  }
}

/** Every token's text starts with this, so a token is recognisable in logs and secret scanners. */
export const TOKEN_PREFIX = "hm2_";

// Names in caveats (orgs, apps) follow the app-name rules: they can never hold the caveat grammar's
// separators (",", " ").
const NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ID = /^[A-Za-z0-9_-]{1,64}$/;

function checkName(what: string, name: string): string {
  if (!NAME.test(name)) throw new TypeError(`${what} "${name}" is not a valid name`);
  return name;
}

/**
 * The latest expiry a token may carry: 9999-12-31T23:59:59.999Z. Past it a time has no four-digit year
 * and, far enough out, no Date at all, so a caveat beyond it is malformed rather than "never expires".
 */
export const MAX_EXPIRES_AT = 253_402_300_799_999;

function checkExpiry(expiresAt: number): number {
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0 || expiresAt > MAX_EXPIRES_AT) {
    throw new TypeError(`expiresAt ${expiresAt} is not a time in ms since the epoch`);
  }
  return expiresAt;
}

function appsCaveat(apps: readonly string[]): string {
  if (apps.length === 0) throw new TypeError("an apps caveat needs at least one app");
  return `apps = ${apps.map((a) => checkName("app", a)).join(",")}`;
}

// The token carries the macaroon's v2 JSON form: macaroon 3.0.4's binary export grows its buffer by
// doubling on every byte appended (its capacity check reads an unset field), so it runs out of memory
// beyond a few caveats. The JSON form holds the same identifier, caveats and signature.
const encode = (m: Macaroon): string =>
  TOKEN_PREFIX + Buffer.from(JSON.stringify(m.exportJSON())).toString("base64url");

/**
 * The largest token and the most caveats one may carry. Verification costs a pure-JS HMAC per caveat
 * and is cached only on success, so without a bound anyone could make the gateway hash a forged 16 KB
 * token of ~1,200 caveats (~11 ms) on every request; a real token has a handful.
 */
export const MAX_TOKEN_LENGTH = 4096;
export const MAX_CAVEATS = 32;

function decode(token: string): Macaroon {
  if (token.length > MAX_TOKEN_LENGTH)
    throw new TokenError("malformed", `a token is at most ${MAX_TOKEN_LENGTH} characters`);
  if (!token.startsWith(TOKEN_PREFIX))
    throw new TokenError("malformed", `a token starts with ${TOKEN_PREFIX}`);
  const body = token.slice(TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body))
    throw new TokenError("malformed", "a token is base64url after its prefix");
  try {
    const json: unknown = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
    // importMacaroon also takes text and byte arrays, and arrays of macaroons: only a v2 JSON object is a token.
    if (
      typeof json !== "object" ||
      json === null ||
      Array.isArray(json) ||
      (json as { v?: unknown }).v !== 2
    ) {
      throw new Error("not a v2 JSON macaroon");
    }
    const caveats = (json as { c?: unknown }).c;
    if (Array.isArray(caveats) && caveats.length > MAX_CAVEATS) {
      throw new TokenError("malformed", `a token has at most ${MAX_CAVEATS} caveats`);
    }
    return importMacaroon(json);
  } catch (err) {
    if (err instanceof TokenError) throw err;
    throw new TokenError("malformed", `not a macaroon: ${(err as Error).message}`);
  }
}

/** Mints a token with `rootKey`: an operator token has no org; every other kind names one. */
export function mintToken(
  rootKey: Uint8Array,
  o: {
    id: string;
    kind: TokenKind;
    org?: string;
    apps?: string[];
    readOnly?: boolean;
    execOnly?: boolean;
    expiresAt?: number;
  },
): string {
  if (!ID.test(o.id))
    throw new TypeError(`token id "${o.id}" is not letters, digits, dashes and underscores`);
  if (!TOKEN_KINDS.includes(o.kind)) throw new TypeError(`unknown token kind "${o.kind}"`);
  if ((o.kind === "operator") !== (o.org === undefined)) {
    throw new TypeError("operator tokens, and only they, have no org");
  }
  if (o.kind === "deploy" && (o.apps === undefined || o.apps.length === 0)) {
    throw new TypeError("a deploy token names its apps");
  }
  const m = newMacaroon({ identifier: o.id, rootKey, version: 2 });
  m.addFirstPartyCaveat(`kind = ${o.kind}`);
  if (o.org !== undefined) m.addFirstPartyCaveat(`org = ${checkName("org", o.org)}`);
  if (o.apps !== undefined) m.addFirstPartyCaveat(appsCaveat(o.apps));
  if (o.readOnly || o.kind === "readonly") m.addFirstPartyCaveat("read-only");
  if (o.execOnly || o.kind === "machine-exec") m.addFirstPartyCaveat("exec-only");
  if (o.expiresAt !== undefined) m.addFirstPartyCaveat(`expires < ${checkExpiry(o.expiresAt)}`);
  return encode(m);
}

/**
 * Narrows a token by adding caveats; needs no key, so anyone holding a token can hand on a weaker one.
 * Throws TokenError("malformed") for text that is not a token.
 */
export function attenuateToken(
  token: string,
  add: { apps?: string[]; readOnly?: true; execOnly?: true; expiresAt?: number },
): string {
  const m = decode(token);
  if (add.apps !== undefined) m.addFirstPartyCaveat(appsCaveat(add.apps));
  if (add.readOnly) m.addFirstPartyCaveat("read-only");
  if (add.execOnly) m.addFirstPartyCaveat("exec-only");
  if (add.expiresAt !== undefined) m.addFirstPartyCaveat(`expires < ${checkExpiry(add.expiresAt)}`);
  return encode(m);
}

/** The caveat grammar after the kind: each pattern with how it narrows the principal. */
const CAVEATS: [RegExp, (p: Principal, arg: string) => void][] = [
  [
    /^read-only$/,
    (p) => {
      p.readOnly = true;
    },
  ],
  [
    /^exec-only$/,
    (p) => {
      p.execOnly = true;
    },
  ],
  [
    /^org = ([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)$/,
    (p, org) => {
      // Two different org caveats leave nothing the token may touch; refusing it says so plainly.
      if (p.org !== undefined && p.org !== org)
        throw new TokenError("unknown_caveat", "conflicting org caveats");
      p.org = org;
    },
  ],
  [
    /^apps = ((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:,[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)$/,
    (p, list) => {
      const apps = list.split(",");
      p.apps = new Set(p.apps === undefined ? apps : apps.filter((a) => p.apps?.has(a)));
    },
  ],
  [
    /^expires < (\d{1,16})$/,
    (p, ms) => {
      const at = Number(ms);
      if (at > MAX_EXPIRES_AT) throw new TokenError("malformed", `expiry ${ms} is past the year 9999`);
      p.expiresAt = p.expiresAt === undefined ? at : Math.min(p.expiresAt, at);
    },
  ],
];

/** The claims of a signed caveat list, before the expiry is compared with the clock. */
function principalOf(m: Macaroon): Principal {
  const tokenId = Buffer.from(m.identifier).toString("utf8");
  if (!ID.test(tokenId)) throw new TokenError("malformed", "the token id is not a valid id");
  const conditions = m.caveats.map((c) => {
    // A third-party caveat needs a discharge macaroon, which Hangar never issues.
    if (c.vid !== undefined) throw new TokenError("unknown_caveat", "third-party caveats are not supported");
    return Buffer.from(c.identifier).toString("utf8");
  });
  // The kind is the first caveat, written at minting: an attenuator can only append, so cannot change it.
  const kind = /^kind = (.+)$/.exec(conditions[0] ?? "")?.[1] as TokenKind | undefined;
  if (kind === undefined || !TOKEN_KINDS.includes(kind)) {
    throw new TokenError("unknown_caveat", "the token's first caveat must be its kind");
  }
  const p: Principal = {
    tokenId,
    kind,
    org: undefined,
    apps: undefined,
    readOnly: false,
    execOnly: false,
    expiresAt: undefined,
  };
  for (const cond of conditions.slice(1)) {
    if (
      !CAVEATS.some(([pattern, apply]) => {
        const match = pattern.exec(cond);
        if (match) apply(p, match[1] as string);
        return match !== null;
      })
    ) {
      throw new TokenError("unknown_caveat", `unknown caveat "${cond}"`);
    }
  }
  if ((p.kind === "operator") !== (p.org === undefined)) {
    throw new TokenError("unknown_caveat", "operator tokens, and only they, have no org caveat");
  }
  return p;
}

/** Verifies the token's signature with `rootKey` and reads its caveats; a verified token is cached by digest. */
function verifyUncached(rootKey: Uint8Array, token: string): Principal {
  const m = decode(token);
  try {
    // Every first-party condition passes here: principalOf reads them all afterwards and refuses any
    // it does not know, so the check only has to establish that the chain of signatures holds.
    m.verify(rootKey, () => null);
  } catch {
    throw new TokenError("bad_signature", "the token's signature does not verify");
  }
  return principalOf(m);
}

// Verifying a macaroon costs an HMAC per caveat in a pure-JS hash; a gateway sees the same few tokens
// on every request, so a verified token is remembered by a digest of its text and the key.
const CACHE_SIZE = 10_000;
const verified = new Map<string, Principal>();

/**
 * The principal of a token signed with `rootKey`, checked against the clock `now` (ms).
 * Throws TokenError: malformed text, a bad signature, an unknown caveat, or an expiry at or before `now`.
 */
export function verifyToken(rootKey: Uint8Array, token: string, now: number): Principal {
  const key = createHash("sha256").update(rootKey).update("\0").update(token).digest("base64");
  let p = verified.get(key);
  if (p === undefined) {
    p = verifyUncached(rootKey, token);
    if (verified.size >= CACHE_SIZE) verified.delete(verified.keys().next().value as string);
  } else verified.delete(key);
  // (Re)inserting keeps the Map in least-recently-used order, so eviction drops the oldest use.
  verified.set(key, p);
  if (p.expiresAt !== undefined && p.expiresAt <= now) {
    throw new TokenError("expired", `the token expired at ${new Date(p.expiresAt).toISOString()}`);
  }
  return p;
}
