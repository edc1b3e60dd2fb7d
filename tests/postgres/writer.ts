// The "no lost commit" client of issue 16's acceptance 2 and `pnpm bench postgres`: it commits numbered
// rows in a loop and remembers each number whose COMMIT was acknowledged (and when), so a test can kill
// the primary, measure how long until a write is accepted again, and then check that every acknowledged
// number is in the new primary's table. Numbers are never reused: a write whose outcome is unknown (the
// connection died before the answer) is not counted as acknowledged, and its number is not tried again.
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";

/** Where the writer may connect: a member's router (port 5432), tried in turn until one answers. */
export interface WriteTarget {
  host: string;
  port: number;
}

/** One acknowledged commit: its number, when it was sent and when its COMMIT returned (performance.now()). */
export interface Ack {
  n: number;
  sent: number;
  at: number;
}

export interface WriterOptions {
  /** The connection URI (user, password, database); its host and port are replaced by the targets'. */
  uri: string;
  /** The table the rows go to; created by prepare(). */
  table?: string;
  /** Pause after a failed attempt (ms): the router closes connections at once while there is no primary. */
  retryMs?: number;
}

const CONNECT_TIMEOUT_MS = 2_000;
// A COMMIT that waits longer than this has an unknown outcome: it is dropped, never counted.
const QUERY_TIMEOUT_MS = 5_000;

/** `uri` with its host and port replaced by the target's (pg lets a connection string win over host/port). */
export function uriAt(uri: string, target: WriteTarget): string {
  const url = new URL(uri);
  url.hostname = target.host.includes(":") ? `[${target.host}]` : target.host;
  url.port = String(target.port);
  return url.toString();
}

/** Commits `INSERT INTO <table>(n)` with n = 1, 2, 3, ... in a loop until stop(). */
export class NumberedWriter {
  readonly acks: Ack[] = [];
  /** Attempts that failed (connect, write or unknown outcome), by message, for the report. */
  readonly failures = new Map<string, number>();
  private next = 1;
  private running: Promise<void> | undefined;
  private stopping = false;
  private client: pg.Client | undefined;
  private readonly table: string;
  private readonly retryMs: number;

  constructor(
    private readonly targets: () => WriteTarget[],
    private readonly opts: WriterOptions,
  ) {
    this.table = opts.table ?? "acks";
    this.retryMs = opts.retryMs ?? 50;
  }

  /** Creates the table (dropping an older one), through the first target that takes the write. */
  async prepare(): Promise<void> {
    await this.withClient(async (c) => {
      await c.query(`DROP TABLE IF EXISTS ${this.table}`);
      await c.query(
        `CREATE TABLE ${this.table} (n bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`,
      );
    });
  }

  /** Starts the loop. */
  start(): void {
    this.stopping = false;
    this.running ??= this.loop();
  }

  /** Stops the loop after the attempt in flight, and closes its connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = undefined;
    await this.drop();
  }

  /**
   * The first acknowledged write sent after `t` (performance.now()), or undefined: one sent before
   * may have been answered by a server that died since.
   */
  firstAckAfter(t: number): Ack | undefined {
    return this.acks.find((a) => a.sent > t);
  }

  /** Resolves with the first acknowledged write sent after `t`, or undefined after `timeoutMs`. */
  async waitForAckAfter(t: number, timeoutMs: number): Promise<Ack | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ack = this.firstAckAfter(t);
      if (ack || performance.now() > deadline) return ack;
      await sleep(20);
    }
  }

  /** The numbers in the table, read through a target. */
  async rowsPresent(): Promise<Set<number>> {
    return this.withClient(async (c) => {
      const { rows } = await c.query<{ n: string }>(`SELECT n FROM ${this.table}`);
      return new Set(rows.map((r) => Number(r.n)));
    });
  }

  /** The acknowledged numbers that are not in the table (read through a target): empty when none was lost. */
  async missing(): Promise<{ missing: number[]; acked: number; rows: number }> {
    // Only what was acknowledged before the read starts must be in the read's snapshot.
    const acked = this.acks.slice();
    const present = await this.rowsPresent();
    return {
      missing: acked.filter((a) => !present.has(a.n)).map((a) => a.n),
      acked: acked.length,
      rows: present.size,
    };
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const n = this.next++;
      try {
        this.client ??= await this.connect();
        const sent = performance.now();
        await this.client.query(`INSERT INTO ${this.table} (n) VALUES ($1)`, [n]);
        this.acks.push({ n, sent, at: performance.now() });
      } catch (err) {
        this.count(err);
        await this.drop();
        await sleep(this.retryMs);
      }
    }
  }

  private count(err: unknown): void {
    const message = (err as Error).message.replace(/\d+\.\d+\.\d+\.\d+(:\d+)?/g, "<addr>");
    this.failures.set(message, (this.failures.get(message) ?? 0) + 1);
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  /** A connected client on the first target that accepts a connection (each tried once). */
  private async connect(): Promise<pg.Client> {
    let last: unknown = new Error("no write targets");
    for (const target of this.targets()) {
      const c = new pg.Client({
        connectionString: uriAt(this.opts.uri, target),
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        query_timeout: QUERY_TIMEOUT_MS,
      });
      // A connection the router or a dying primary cuts emits 'error' on the client: the query fails too.
      c.on("error", () => undefined);
      try {
        await c.connect();
        return c;
      } catch (err) {
        last = err;
        await c.end().catch(() => undefined);
      }
    }
    throw last;
  }

  /** Runs `fn` on a fresh connection (retrying for a while: a failover may be in progress). */
  private async withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const deadline = performance.now() + 30_000;
    for (;;) {
      let c: pg.Client | undefined;
      try {
        c = await this.connect();
        return await fn(c);
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await sleep(250);
      } finally {
        await c?.end().catch(() => undefined);
      }
    }
  }
}
