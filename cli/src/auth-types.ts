// The JSON of the gateway's org, token, whoami and audit endpoints (Hangar's own, snake_case as the
// rest of the API).

/** What a token may be: Fly's kinds, plus the operator's own. */
export type TokenKind = "operator" | "org" | "deploy" | "readonly" | "machine-exec";

/** An org, as `GET /v1/orgs` lists it. */
export interface Org {
  slug: string;
  name: string;
  created_at: string;
}

/** `GET /v1/orgs/{slug}`. */
export interface OrgDetails extends Org {
  app_count: number;
  /** Per-action rate limits per minute set for the org (unset ones follow the platform's defaults). */
  limits: Record<string, number>;
}

/** `POST /v1/orgs`: the org and its first admin token, shown this once. */
export interface CreatedOrg extends Org {
  token: string;
  token_id: string;
}

/** `POST /v1/tokens` body. */
export interface CreateTokenRequest {
  kind: Exclude<TokenKind, "operator">;
  org?: string;
  app?: string;
  /** A Go duration, e.g. "720h". */
  expiry?: string;
  name?: string;
}

/** A token as `GET /v1/tokens` lists it (never the token itself). */
export interface TokenInfo {
  id: string;
  kind: TokenKind;
  name: string;
  org: string | null;
  apps: string[] | null;
  expires_at: string | null;
  created_at: string;
  revoked_at: string | null;
}

/** `POST /v1/tokens`: the new token, shown this once. */
export interface CreatedToken {
  id: string;
  token: string;
  kind: TokenKind;
  org: string | null;
  apps: string[] | null;
  name: string;
  expires_at: string | null;
}

/** `GET /v1/auth/whoami`: what the token in use may do. */
export interface Whoami {
  token_id: string;
  kind: TokenKind;
  org: string | null;
  apps: string[] | null;
  read_only: boolean;
  exec_only: boolean;
  expires_at: string | null;
}

/** One audited call of `GET /v1/audit`. */
export interface AuditEvent {
  seq: number;
  time: string;
  token_id: string;
  token_kind: string;
  action: string;
  target: string;
  org: string;
  app: string;
  status: number;
  method: string;
  path: string;
  request_id: string;
}

/** `GET /v1/audit`: newest first; `next_before` asks for the page before. */
export interface AuditPage {
  events: AuditEvent[];
  next_before: number | null;
}
