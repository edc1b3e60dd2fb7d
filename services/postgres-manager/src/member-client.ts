import type { DomainErrorCode } from "@hangar/eventstore";
import { CommandError } from "@hangar/service";

/** A member as the control API names it: its machine id and its 6PN address (peers reach it there). */
export interface MemberAddress {
  id: string;
  address: string;
}

/** WAL positions: as Postgres prints them, or as numbers for comparing. */
export interface Lsns<T> {
  current: T | null;
  receive: T | null;
  replay: T | null;
}

/** One replica as the primary sees it (pg_stat_replication). */
export interface ReplicationRow {
  member_id: string;
  state: string;
  sync_state: string;
  replay_lag_ms: number | null;
  flush_lsn: string | null;
}

/** `GET /status` of a member agent (docs/postgres.md, the member agent's control API). */
export interface MemberStatus {
  member_id: string;
  state: "empty" | "starting" | "primary" | "replica" | "stopped";
  role: "primary" | "replica" | null;
  fenced: boolean;
  pg_up: boolean;
  timeline: number | null;
  lsn: Lsns<string>;
  lsn_bytes: Lsns<number>;
  replication: ReplicationRow[];
  majority: boolean;
  peers_seen: string[];
  members: MemberAddress[];
  xact_commit: number;
  numbackends: number;
  sync_standby_names: string;
  /** How the member last started replicating: a replicate's answer says which it took. */
  rejoined_with?: "rewind" | "basebackup" | "follow" | null;
  /** How old postgres' answer behind the status is (ms); 0: answered for this status. */
  pg_answer_age_ms?: number | null;
}

/** What the agent answers to an error: its message and code. */
interface AgentError {
  error?: string;
  code?: string;
}

const AGENT_CODES: Record<string, DomainErrorCode> = {
  invalid_argument: "invalid_argument",
  failed_precondition: "failed_precondition",
  unavailable: "unavailable",
  // The manager sent the cluster's own token: a refusal means the secret was changed (or unset) since
  // the member started, which the user can mend, so it is not the platform's fault (no 500).
  unauthenticated: "failed_precondition",
};

const TOKEN_REFUSED =
  "the member refused the cluster's agent token: its secret HANGAR_PG_AGENT_TOKEN was changed or unset since the member started; restart the cluster's machines (hangar machine restart <id> -a <cluster>) so they take the current secret, and leave the cluster's HANGAR_PG_AGENT_TOKEN, OPERATOR_PASSWORD and REPL_PASSWORD secrets to hangar postgres";

/** A member agent's own refusal (it answered, with an error status), as against no answer at all. */
export class AgentRefusal extends CommandError {
  override name = "AgentRefusal";
}

/**
 * The member agents' control API as the manager calls it: `http://<machine's host-local IPv4>:5500`
 * with the cluster's bearer token. A member that does not answer in time is `unavailable`; the
 * agent's own refusals keep their code.
 */
export class MemberClient {
  constructor(
    private readonly port: number,
    // Configure, fence and unfence reload postgres, which a busy host takes seconds to do.
    private readonly timeoutMs = 30_000,
  ) {}

  /** The member's status; undefined when it does not answer (quickly) or answers an error. */
  async statusOrUndefined(
    address: string,
    token: string,
    timeoutMs = 1_000,
  ): Promise<MemberStatus | undefined> {
    return this.call<MemberStatus>(address, token, "GET", "/status", undefined, timeoutMs).catch(
      () => undefined,
    );
  }

  status(address: string, token: string): Promise<MemberStatus> {
    return this.call(address, token, "GET", "/status");
  }

  /** The status with postgres' answer of now (the agent waits up to 5 s for it, never an older one). */
  freshStatus(address: string, token: string): Promise<MemberStatus> {
    return this.call(address, token, "GET", "/status/fresh", undefined, 8_000);
  }

  configure(address: string, token: string, members: MemberAddress[]): Promise<MemberStatus> {
    return this.call(address, token, "POST", "/configure", { members });
  }

  /** initdb, roles, start as primary; long: the first initdb of a volume. */
  bootstrap(address: string, token: string, members: MemberAddress[]): Promise<MemberStatus> {
    return this.call(address, token, "POST", "/bootstrap", { members }, 120_000);
  }

  /** Base backup (or pg_rewind) from the primary, then streaming. */
  replicate(address: string, token: string, primary: MemberAddress): Promise<MemberStatus> {
    return this.call(address, token, "POST", "/replicate", { primary }, 300_000);
  }

  promote(address: string, token: string): Promise<MemberStatus> {
    return this.call(address, token, "POST", "/promote", {}, 40_000);
  }

  follow(address: string, token: string, primary: MemberAddress): Promise<MemberStatus> {
    return this.call(address, token, "POST", "/follow", { primary }, 30_000);
  }

  fence(address: string, token: string): Promise<MemberStatus> {
    return this.call(address, token, "POST", "/fence", {});
  }

  unfence(address: string, token: string): Promise<MemberStatus> {
    return this.call(address, token, "POST", "/unfence", {});
  }

  /** Creates (or resets the password of) a user and its database, on the primary. */
  createDatabase(
    address: string,
    token: string,
    body: { database: string; user: string; password: string },
  ): Promise<{ created: boolean }> {
    return this.call(address, token, "POST", "/database", body, 30_000);
  }

  dropDatabase(address: string, token: string, body: { database: string; user: string }): Promise<unknown> {
    return this.call(address, token, "DELETE", "/database", body, 30_000);
  }

  private async call<R>(
    address: string,
    token: string,
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = this.timeoutMs,
  ): Promise<R> {
    const host = address.includes(":") ? `[${address}]` : address;
    let res: Response;
    try {
      res = await fetch(`http://${host}:${this.port}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new CommandError(
        `member agent at ${address} did not answer ${method} ${path}: ${String(err)}`,
        "unavailable",
        {
          cause: err,
        },
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? {} : JSON.parse(text);
    } catch {
      parsed = { error: text };
    }
    if (!res.ok) {
      const e = parsed as AgentError;
      const code = (e.code && AGENT_CODES[e.code]) || "unavailable";
      const reason = res.status === 401 ? TOKEN_REFUSED : (e.error ?? text);
      throw new AgentRefusal(`member agent at ${address}: ${method} ${path}: ${res.status} ${reason}`, code);
    }
    return parsed as R;
  }
}
