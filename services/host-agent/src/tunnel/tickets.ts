import { randomBytes } from "node:crypto";
import type { ExecTarget } from "@hangar/service";

/** How long a ticket may wait for its connection: the gateway connects right after it gets one. */
export const TICKET_TTL_MS = 10_000;

/** What a ticket opens: one command in one machine. */
export interface TicketGrant {
  machineId: string;
  target: ExecTarget;
}

/**
 * One-time tickets for the tunnel listener: 32 random bytes (base64url), each bound to the request it
 * was issued for (`cmd.host.<id>.tunnel`, which only the gateway may send), redeemable once, within
 * the TTL. A connection that brings anything else is closed.
 */
export class TicketBook {
  private readonly tickets = new Map<string, TicketGrant & { expiresAt: number }>();

  constructor(
    private readonly ttlMs = TICKET_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new ticket for `grant`. */
  issue(grant: TicketGrant): string {
    this.prune();
    const ticket = randomBytes(32).toString("base64url");
    this.tickets.set(ticket, { ...grant, expiresAt: this.now() + this.ttlMs });
    return ticket;
  }

  /** The grant of a live ticket, which is spent by this call; undefined for an unknown, used or expired one. */
  redeem(ticket: string): TicketGrant | undefined {
    const found = this.tickets.get(ticket);
    if (!found) return undefined;
    this.tickets.delete(ticket);
    if (found.expiresAt <= this.now()) return undefined;
    return { machineId: found.machineId, target: found.target };
  }

  /** Tickets not yet redeemed nor expired. */
  get size(): number {
    this.prune();
    return this.tickets.size;
  }

  /** Forgets expired tickets, so that unredeemed ones do not pile up. */
  private prune(): void {
    const now = this.now();
    for (const [ticket, grant] of this.tickets) if (grant.expiresAt <= now) this.tickets.delete(ticket);
  }
}
