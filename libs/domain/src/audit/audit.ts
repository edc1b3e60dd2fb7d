import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = { AuditRecorded: hangar.v1.AuditRecorded };

/** An audit event. */
export type AuditEvent = EventOf<typeof messages>;

/**
 * The AUDIT stream: one subject per org and app, `ev.audit.<org>.<app>` ("_" for none), so an org's
 * trail is `ev.audit.<org>.>` and an app's one subject.
 */
export const auditStream = defineStream({
  name: "AUDIT",
  subjectPrefix: "ev.audit",
  codec: eventCodec(messages),
});

/** One successful mutating call: who (token id and kind), what (action, target), where (org, app). */
export interface AuditEntry {
  tokenId: string;
  tokenKind: string;
  action: string;
  target: string;
  /** "" when the call acted outside any org (an operator's platform-wide call) or app. */
  org: string;
  app: string;
  requestId: string;
  atMs: number;
  status: number;
  method: string;
  path: string;
}

/** How many calls an org's app (or the org itself, app "_") has had recorded. */
export interface AuditState {
  recorded: number;
}

export type AuditCommand = { type: "RecordCall"; entry: AuditEntry };

/** Written for an org or app that is "" in an entry: subject tokens cannot be empty. */
const NONE = "_";
const PLAIN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

// Org slugs of old apps are free text: one that is not a plain subject token is written as "=" and
// its base64url, so no name can make a subject of another org's (or a wildcard).
const subjectToken = (name: string): string =>
  name === "" ? NONE : PLAIN.test(name) ? name : `=${Buffer.from(name).toString("base64url")}`;

/** The aggregate (and so subject) an entry is recorded under: `<org>.<app>`, "_" for none. */
export function auditAggregateId(org: string, app: string): string {
  return `${subjectToken(org)}.${subjectToken(app)}`;
}

/** An entry as the event carries it (protobuf leaves absent strings and numbers undefined). */
export function auditEntryOf(data: hangar.v1.IAuditRecorded): AuditEntry {
  return {
    tokenId: data.tokenId ?? "",
    tokenKind: data.tokenKind ?? "",
    action: data.action ?? "",
    target: data.target ?? "",
    org: data.org ?? "",
    app: data.app ?? "",
    requestId: data.requestId ?? "",
    atMs: Number(data.atMs ?? 0),
    status: data.status ?? 0,
    method: data.method ?? "",
    path: data.path ?? "",
  };
}

// A stable dotted name, e.g. "machine.create" or "registry.push".
const ACTION = /^[a-z][a-z_]*(\.[a-z][a-z_]*)+$/;

/**
 * The audit trail of one org's app: append-only, so a call is recorded whatever came before; an
 * entry without a token, with an action that is not a stable dotted name or a status that is not a
 * success is refused (only successful calls are audited).
 */
export const auditDecider: Decider<AuditState, AuditCommand, AuditEvent> = {
  initialState: () => ({ recorded: 0 }),
  decide(command) {
    const e = command.entry;
    if (e.tokenId === "") throw new DomainError("an audit entry needs the token id", "invalid_argument");
    if (!ACTION.test(e.action))
      throw new DomainError(`invalid audit action ${JSON.stringify(e.action)}`, "invalid_argument");
    if (e.status < 200 || e.status > 299)
      throw new DomainError(`only successful calls are audited, not status ${e.status}`, "invalid_argument");
    return [{ type: "AuditRecorded", data: { ...e } }];
  },
  evolve: (state) => ({ recorded: state.recorded + 1 }),
};
