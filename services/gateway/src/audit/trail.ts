import { randomUUID } from "node:crypto";
import {
  type AuditCommand,
  type AuditEntry,
  type AuditEvent,
  type AuditState,
  auditAggregateId,
  auditDecider,
  auditEntryOf,
  auditStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView } from "@hangar/service";

/** A recorded entry and its place in the stream (newer entries have higher sequences). */
export interface AuditRecord extends AuditEntry {
  seq: number;
}

/** Which entries to read, newest first. */
export interface AuditQuery {
  /** One org's entries; every org's when undefined (an operator's view). */
  org?: string;
  /** One app's entries. */
  app?: string;
  /** Only these apps' entries (an app-scoped token's view; org-level entries are left out). */
  apps?: ReadonlySet<string>;
  /** Only entries older than this sequence: the `next_before` of the previous page. */
  before?: number;
  limit: number;
}

/** What the API needs of the audit trail: append one entry, read entries back. */
export interface AuditLog {
  record(entry: AuditEntry): Promise<void>;
  query(q: AuditQuery): Promise<AuditRecord[]>;
}

/** Entries kept in memory per org for `GET /v1/audit`; older ones stay in the stream. */
export const KEPT_PER_ORG = 10_000;
/** The platform's newest calls read back at start; the stream only grows, and a start must not with it. */
export const READ_AT_START = 200_000;

/**
 * The AUDIT stream, written and read by the gateway: `record` appends one entry and waits for its
 * acknowledgement; the read side follows the stream (every gateway replica's appends) from the
 * platform's newest READ_AT_START calls and keeps each org's newest KEPT_PER_ORG, so a query filters
 * memory, not the stream.
 */
export class AuditTrail implements AuditLog {
  private readonly byOrg = new Map<string, AuditRecord[]>();
  private lastAppended = 0;

  private constructor(
    private readonly store: EventStore,
    private readonly stream: AggregateStream<AuditEvent>,
    private readonly view: AggregateView<AuditState, AuditCommand, AuditEvent>,
    private readonly keptPerOrg: number,
  ) {
    view.subscribe((change) => {
      for (const r of change.events) this.keep({ ...auditEntryOf(r.event.data), seq: r.seq });
    });
  }

  /** Follows the stream and resolves once its history is read. */
  static async start(
    store: EventStore,
    opts: { stream?: AggregateStream<AuditEvent>; keptPerOrg?: number; readAtStart?: number } = {},
  ): Promise<AuditTrail> {
    const stream = opts.stream ?? auditStream;
    const last = (await store.jsm.streams.info(stream.name)).state.last_seq;
    const afterSeq = Math.max(0, last - (opts.readAtStart ?? READ_AT_START));
    const view = AggregateView.create(store, stream, auditDecider, { afterSeq });
    const trail = new AuditTrail(store, stream, view, opts.keptPerOrg ?? KEPT_PER_ORG);
    await view.follow();
    await view.caughtUp;
    return trail;
  }

  async record(entry: AuditEntry): Promise<void> {
    const id = auditAggregateId(entry.org, entry.app);
    const events = auditDecider.decide({ type: "RecordCall", entry }, auditDecider.initialState());
    // Each call is its own command: a client's request id may repeat, so it is only the correlation.
    const { seq } = await this.store.append(this.stream, id, events, {
      commandId: randomUUID(),
      correlationId: entry.requestId || undefined,
      expectedSeq: "any",
    });
    this.lastAppended = Math.max(this.lastAppended, seq);
  }

  /** The newest entries matching `q`; what this gateway appended before is always included. */
  async query(q: AuditQuery): Promise<AuditRecord[]> {
    await this.view.waitForSeq(this.lastAppended);
    const lists = q.org === undefined ? [...this.byOrg.values()] : [this.byOrg.get(q.org) ?? []];
    const found: AuditRecord[] = [];
    for (const list of lists) {
      let taken = 0;
      for (let i = list.length - 1; i >= 0 && taken < q.limit; i--) {
        const r = list[i] as AuditRecord;
        if (q.before !== undefined && r.seq >= q.before) continue;
        if (q.app !== undefined && r.app !== q.app) continue;
        if (q.apps !== undefined && !q.apps.has(r.app)) continue;
        found.push(r);
        taken++;
      }
    }
    return found.sort((a, b) => b.seq - a.seq).slice(0, q.limit);
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }

  private keep(r: AuditRecord): void {
    let list = this.byOrg.get(r.org);
    if (!list) {
      list = [];
      this.byOrg.set(r.org, list);
    }
    list.push(r);
    // Trimmed in halves, so an org past its budget costs one copy per keptPerOrg / 2 entries.
    if (list.length >= this.keptPerOrg * 1.5) list.splice(0, list.length - this.keptPerOrg);
  }
}
