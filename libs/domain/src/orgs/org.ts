import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  OrgCreated: hangar.v1.OrgCreated,
  TokenIssued: hangar.v1.TokenIssued,
  TokenRevoked: hangar.v1.TokenRevoked,
  OrgLimitsSet: hangar.v1.OrgLimitsSet,
};

/** An org's events, as its decider sees them. */
export type OrgEvent = EventOf<typeof messages>;

/** The ORGS stream: one subject per org, `ev.org.<slug>`; operator tokens under `ev.org._operator`. */
export const orgsStream = defineStream({
  name: "ORGS",
  subjectPrefix: "ev.org",
  codec: eventCodec(messages),
});

/**
 * The aggregate holding operator tokens, which belong to no org. Its leading underscore can never
 * start an org slug, so no org can take it.
 */
export const OPERATOR_AGGREGATE = "_operator";

/** An org slug follows Fly's app-name rules: a DNS label. */
export const ORG_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A token as recorded: its id and caveats, never the token itself. */
export interface TokenRecord {
  id: string;
  /** Undefined for operator tokens. */
  org: string | undefined;
  kind: string;
  name: string;
  /** Empty: every app of the org. */
  apps: string[];
  expiresAtMs: number | undefined;
  createdAtMs: number;
  revokedAtMs: number | undefined;
}

export interface OrgState {
  /** "absent" for an org never created; the operator aggregate holds tokens while absent. */
  status: "absent" | "created";
  slug: string;
  name: string;
  createdAtMs: number;
  tokens: ReadonlyMap<string, TokenRecord>;
  /** Rate-limit overrides per action, per minute. */
  limits: Readonly<Record<string, number>>;
}

export type OrgCommand =
  | { type: "CreateOrg"; slug: string; name: string; nowMs: number }
  | {
      type: "IssueToken";
      id: string;
      /** Undefined for an operator token, issued on OPERATOR_AGGREGATE. */
      org: string | undefined;
      kind: string;
      name: string;
      apps: string[];
      expiresAtMs: number | undefined;
      nowMs: number;
    }
  | { type: "RevokeToken"; id: string; nowMs: number }
  | { type: "SetOrgLimits"; perMinute: Record<string, number> };

const MAX_TOKENS_PER_ORG = 1000;

/** The org aggregate: created once under a valid slug; its tokens issued and revoked; its limits set. */
export const orgDecider: Decider<OrgState, OrgCommand, OrgEvent> = {
  initialState: () => ({
    status: "absent",
    slug: "",
    name: "",
    createdAtMs: 0,
    tokens: new Map(),
    limits: {},
  }),
  decide(command, state) {
    switch (command.type) {
      case "CreateOrg": {
        if (state.status !== "absent")
          throw new DomainError(`org ${command.slug} already exists`, "already_exists");
        if (!ORG_SLUG.test(command.slug)) {
          throw new DomainError(
            `invalid org slug ${JSON.stringify(command.slug)}: use 1-63 lowercase letters, digits and dashes, not starting or ending with a dash`,
            "invalid_argument",
          );
        }
        return [
          {
            type: "OrgCreated",
            data: { slug: command.slug, name: command.name, createdAtMs: command.nowMs },
          },
        ];
      }
      case "IssueToken": {
        // An org's tokens need the org; operator tokens (no org) live on the aggregate no org can be.
        if (command.org !== undefined && state.status !== "created") {
          throw new DomainError(`org ${command.org} not found`, "not_found");
        }
        if (state.tokens.has(command.id))
          throw new DomainError(`token ${command.id} already exists`, "already_exists");
        if (state.tokens.size >= MAX_TOKENS_PER_ORG) {
          throw new DomainError(`an org holds at most ${MAX_TOKENS_PER_ORG} tokens`, "failed_precondition");
        }
        return [
          {
            type: "TokenIssued",
            data: {
              id: command.id,
              org: command.org ?? "",
              kind: command.kind,
              name: command.name,
              apps: command.apps,
              expiresAtMs: command.expiresAtMs ?? 0,
              createdAtMs: command.nowMs,
            },
          },
        ];
      }
      case "RevokeToken": {
        const token = state.tokens.get(command.id);
        if (token === undefined) throw new DomainError(`token ${command.id} not found`, "not_found");
        // Revoking twice changes nothing, so it records nothing.
        if (token.revokedAtMs !== undefined) return [];
        return [{ type: "TokenRevoked", data: { id: command.id, revokedAtMs: command.nowMs } }];
      }
      case "SetOrgLimits": {
        if (state.status !== "created") throw new DomainError("org not found", "not_found");
        for (const [action, n] of Object.entries(command.perMinute)) {
          if (!/^[a-z_]{1,32}$/.test(action) || !Number.isInteger(n) || n < 0 || n > 1_000_000) {
            throw new DomainError(
              `invalid limit ${action}=${n}: a whole number of requests per minute`,
              "invalid_argument",
            );
          }
        }
        return [{ type: "OrgLimitsSet", data: { perMinute: command.perMinute } }];
      }
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case "OrgCreated":
        return {
          ...state,
          status: "created",
          slug: event.data.slug ?? "",
          name: event.data.name ?? "",
          createdAtMs: Number(event.data.createdAtMs ?? 0),
        };
      case "TokenIssued": {
        const d = event.data;
        const tokens = new Map(state.tokens);
        tokens.set(d.id ?? "", {
          id: d.id ?? "",
          org: d.org || undefined,
          kind: d.kind ?? "",
          name: d.name ?? "",
          apps: d.apps ?? [],
          expiresAtMs: Number(d.expiresAtMs ?? 0) || undefined,
          createdAtMs: Number(d.createdAtMs ?? 0),
          revokedAtMs: undefined,
        });
        return { ...state, tokens };
      }
      case "TokenRevoked": {
        const token = state.tokens.get(event.data.id ?? "");
        if (token === undefined) return state;
        const tokens = new Map(state.tokens);
        tokens.set(token.id, { ...token, revokedAtMs: Number(event.data.revokedAtMs ?? 0) });
        return { ...state, tokens };
      }
      case "OrgLimitsSet":
        return { ...state, limits: { ...(event.data.perMinute ?? {}) } };
    }
  },
};
