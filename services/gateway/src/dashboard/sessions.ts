import { randomBytes } from "node:crypto";
import type { Principal } from "@hangar/auth";

/** One signed-in browser: the verified token it presented, used for every call the dashboard makes for it. */
export interface DashboardSession {
  token: string;
  tokenId: string;
  /** The token's org caveat; undefined for an operator's token (every org). */
  org: string | undefined;
  /** When the session ends (ms since the epoch): its lifetime, never past the token's own expiry. */
  expiresAt: number;
}

export interface SessionOptions {
  /** How long a session lasts after login; default 12 h. */
  ttlMs?: number;
  /** The most sessions kept; the oldest goes first beyond it. Default 10,000. */
  max?: number;
  now?: () => number;
}

/**
 * The dashboard's sessions, in this gateway's memory: a random id (the cookie) mapped to the token it
 * was exchanged for. The cookie alone says nothing and holds no token. A gateway restart forgets them
 * (the user logs in again), and another gateway replica does not know them.
 */
export class DashboardSessions {
  private readonly sessions = new Map<string, DashboardSession>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(opts: SessionOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 12 * 3_600_000;
    this.max = opts.max ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Starts a session for a verified token and returns its id (256 random bits, base64url). */
  create(token: string, principal: Pick<Principal, "tokenId" | "org" | "expiresAt">): string {
    const id = randomBytes(32).toString("base64url");
    const end = this.now() + this.ttlMs;
    this.sessions.set(id, {
      token,
      tokenId: principal.tokenId,
      org: principal.org,
      expiresAt: principal.expiresAt === undefined ? end : Math.min(end, principal.expiresAt),
    });
    // Map keeps insertion order: the first keys are the oldest sessions.
    for (const oldest of this.sessions.keys()) {
      if (this.sessions.size <= this.max) break;
      this.sessions.delete(oldest);
    }
    return id;
  }

  /** The live session with this id; an expired one is forgotten and undefined. */
  get(id: string | undefined): DashboardSession | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (session === undefined) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  /** Ends a session (logout, or its token no longer accepted). */
  delete(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}
