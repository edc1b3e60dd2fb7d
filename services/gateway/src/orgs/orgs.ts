import { randomBytes } from "node:crypto";
import { mintToken, type TokenKind } from "@hangar/auth";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  OPERATOR_AGGREGATE,
  type OrgCommand,
  type OrgEvent,
  type OrgState,
  orgDecider,
  orgsStream,
  type TokenRecord,
} from "@hangar/domain";
import { type AggregateStream, CommandHandler, DomainError, type EventStore } from "@hangar/eventstore";
import { AggregateView, handleThenWait } from "@hangar/service";
import type { OrgDirectory } from "../http/authz.js";

/** What the token routes need to mint one: its caveats, and a name and expiry to record. */
export interface TokenRequest {
  kind: TokenKind;
  org: string | undefined;
  apps: string[] | undefined;
  name: string;
  expiresAtMs: number | undefined;
}

/** A token just minted: the text (shown once, never stored) and its record. */
export interface IssuedToken {
  token: string;
  record: TokenRecord;
}

/** An org as listed: created on ORGS, or known only from apps' (older, free-text) org_slug. */
export interface OrgSummary {
  slug: string;
  name: string;
  createdAtMs: number;
}

/** A fresh token id: what revocation names, so it must not be guessable from another. */
export const newTokenId = (): string => `tok_${randomBytes(12).toString("base64url")}`;

/**
 * The gateway's orgs and tokens: the ORGS stream folded in memory (orgs, tokens, revoked ids, limits)
 * next to the APPS view (which org each app is in), and the commands that change them. Every gateway
 * replica has its own and follows the stream, so revocations reach every replica.
 */
export class Orgs implements OrgDirectory {
  private readonly handler: CommandHandler<OrgState, OrgCommand, OrgEvent>;
  private readonly revoked = new Set<string>();
  /** Token id -> the aggregate holding it (an org's slug, or OPERATOR_AGGREGATE). */
  private readonly tokenHome = new Map<string, string>();

  private constructor(
    store: EventStore,
    stream: AggregateStream<OrgEvent>,
    private readonly view: AggregateView<OrgState, OrgCommand, OrgEvent>,
    private readonly apps: AggregateView<AppState, AppCommand, AppEvent>,
    private readonly key: Uint8Array,
  ) {
    this.handler = new CommandHandler(store, stream, orgDecider);
    view.subscribe(({ aggregateId, state }) => {
      for (const t of state.tokens.values()) {
        this.tokenHome.set(t.id, aggregateId);
        if (t.revokedAtMs !== undefined) this.revoked.add(t.id);
      }
    });
  }

  /**
   * Follows ORGS until caught up; `apps` is the gateway's APPS view, `key` the token root key; `stream`
   * is ORGS unless a test names its own.
   */
  static async start(
    store: EventStore,
    apps: AggregateView<AppState, AppCommand, AppEvent>,
    key: Uint8Array,
    stream: AggregateStream<OrgEvent> = orgsStream,
  ): Promise<Orgs> {
    const orgs = new Orgs(store, stream, AggregateView.create(store, stream, orgDecider), apps, key);
    await orgs.view.follow();
    await orgs.view.caughtUp;
    return orgs;
  }

  orgOf(app: string): string | undefined {
    const a = this.apps.get(app);
    return a?.status === "created" ? a.orgSlug : undefined;
  }

  exists(org: string): boolean {
    return this.orgs().some((o) => o.slug === org);
  }

  limitsOf(org: string): Partial<Record<string, number>> {
    return this.view.get(org)?.limits ?? {};
  }

  /** Whether the token with this id was revoked. */
  isRevoked(tokenId: string): boolean {
    return this.revoked.has(tokenId);
  }

  /** Every org, sorted by slug: those created on ORGS and those only apps name (an app's org_slug). */
  orgs(): OrgSummary[] {
    const found = new Map<string, OrgSummary>();
    for (const [slug, o] of this.view.entries()) {
      if (o.status === "created") found.set(slug, { slug, name: o.name, createdAtMs: o.createdAtMs });
    }
    // Apps created before orgs existed named theirs in free text: each name is an org, read as is.
    for (const [, a] of this.apps.entries()) {
      if (a.status !== "absent" && a.orgSlug !== "" && !found.has(a.orgSlug)) {
        found.set(a.orgSlug, { slug: a.orgSlug, name: a.orgSlug, createdAtMs: 0 });
      }
    }
    return [...found.values()].sort((x, y) => x.slug.localeCompare(y.slug));
  }

  /** The org's live apps, sorted. */
  appsOf(org: string): string[] {
    const names: string[] = [];
    for (const [name, a] of this.apps.entries())
      if (a.status === "created" && a.orgSlug === org) names.push(name);
    return names.sort();
  }

  /** The org's rate-limit overrides. */
  async setLimits(org: string, perMinute: Record<string, number>): Promise<void> {
    await this.ensureRecorded(org);
    await this.run(org, { type: "SetOrgLimits", perMinute });
  }

  /** Creates an org; `already_exists` when the slug is taken, also by apps' org_slug. */
  async createOrg(slug: string, name: string): Promise<OrgSummary> {
    if (this.exists(slug)) throw new DomainError(`org ${slug} already exists`, "already_exists");
    await this.run(slug, { type: "CreateOrg", slug, name, nowMs: Date.now() });
    return { slug, name, createdAtMs: this.view.get(slug)?.createdAtMs ?? 0 };
  }

  /** Mints a token and records it (never the token itself); the org must exist. */
  async issueToken(req: TokenRequest): Promise<IssuedToken> {
    if (req.org !== undefined) await this.ensureRecorded(req.org);
    const id = newTokenId();
    const home = req.org ?? OPERATOR_AGGREGATE;
    // Minted before it is recorded: a token that cannot be minted must not leave a TokenIssued behind.
    const token = mintToken(this.key, {
      id,
      kind: req.kind,
      ...(req.org !== undefined ? { org: req.org } : {}),
      ...(req.apps !== undefined ? { apps: req.apps } : {}),
      ...(req.expiresAtMs !== undefined ? { expiresAt: req.expiresAtMs } : {}),
    });
    await this.run(home, {
      type: "IssueToken",
      id,
      org: req.org,
      kind: req.kind,
      name: req.name,
      apps: req.apps ?? [],
      expiresAtMs: req.expiresAtMs,
      nowMs: Date.now(),
    });
    return { token, record: this.token(id) as TokenRecord };
  }

  /** The recorded token with this id, if any. */
  token(id: string): TokenRecord | undefined {
    const home = this.tokenHome.get(id);
    return home === undefined ? undefined : this.view.get(home)?.tokens.get(id);
  }

  /** The tokens recorded for an org, or for every org and the operator when `org` is undefined; oldest first. */
  tokens(org: string | undefined): TokenRecord[] {
    const homes = org === undefined ? [...this.view.entries()].map(([h]) => h) : [org];
    return homes
      .flatMap((h) => [...(this.view.get(h)?.tokens.values() ?? [])])
      .sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
  }

  /** Revokes a recorded token by id; `not_found` when no such token was recorded. */
  async revokeToken(id: string): Promise<void> {
    const home = this.tokenHome.get(id);
    if (home === undefined) throw new DomainError(`token ${id} not found`, "not_found");
    await this.run(home, { type: "RevokeToken", id, nowMs: Date.now() });
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }

  /** An org only apps name (created before ORGS existed) is recorded on first use, as it is read. */
  private async ensureRecorded(org: string): Promise<void> {
    if (this.view.get(org)?.status === "created") return;
    if (!this.exists(org)) throw new DomainError(`org ${org} not found`, "not_found");
    try {
      await this.run(org, { type: "CreateOrg", slug: org, name: org, nowMs: Date.now() });
    } catch (err) {
      // Another replica recorded it first.
      if (!(err instanceof DomainError && err.code === "already_exists")) throw err;
    }
  }

  private async run(aggregateId: string, command: OrgCommand): Promise<void> {
    await handleThenWait(this.handler, this.view, aggregateId, command, {
      commandId: `${command.type}-${aggregateId}-${randomBytes(4).toString("hex")}`,
    });
  }
}
