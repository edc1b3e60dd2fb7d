import { randomBytes } from "node:crypto";
import {
  type PgAttachReply,
  type PgAttachRequest,
  type PgBackupList,
  type PgBackupView,
  type PgClusterList,
  type PgClusterRef,
  type PgClusterView,
  type PgCreateRequest,
  type PgDetachRequest,
  type PgFailoverReply,
  type PgImportReply,
  type PgImportRequest,
  type PgListRequest,
  type PgRestoreRequest,
  sendCommand,
  subjects,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type CreatePostgresRequest,
  DEFAULT_PG_VM_SIZE,
  type ImportRequest,
  type PgCreateOutcome,
  type PostgresBackend,
  type RestoreRequest,
} from "./api.js";

/** A create makes volumes, pulls the member image on each host and waits for replicas to stream. */
const CREATE_TIMEOUT_MS = 20 * 60_000;
/** Reads of the manager's read model, with one live status request per member. */
const READ_TIMEOUT_MS = 10_000;
/** Commands that run one statement on the primary (attach, detach). */
const ATTACH_TIMEOUT_MS = 60_000;
/** A switchover waits for the candidate to catch up and be promoted; a destroy for machines and volumes. */
const FAILOVER_TIMEOUT_MS = 120_000;
/** An import runs pg_dump | pg_restore in a machine: the manager gives it an hour, then a minute to clean up. */
const IMPORT_TIMEOUT_MS = 61 * 60_000;
/** A base backup streams the whole database from the primary into the object store. */
const BACKUP_TIMEOUT_MS = 60 * 60_000;
/** How long a create's HTTP request waits for the manager before answering 202 (the CLI then polls). */
const DEFAULT_CREATE_WAIT_MS = 20_000;

/** Options of NatsPostgresBackend. */
export interface NatsPostgresOptions {
  /** The region of a create that names none. */
  defaultRegion: string;
  logger: Logger;
  /** How long a create's request waits before answering "in progress" (20 s). */
  createWaitMs?: number;
}

/**
 * The postgres routes over the postgres manager's commands (`cmd.postgres.*`, request/reply). The
 * gateway's NATS user is the only one allowed to ask them (nats-permissions.ts); it has authorized
 * the caller against the cluster's org before any call here.
 */
export class NatsPostgresBackend implements PostgresBackend {
  private readonly createWaitMs: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: NatsPostgresOptions,
  ) {
    this.createWaitMs = opts.createWaitMs ?? DEFAULT_CREATE_WAIT_MS;
  }

  async create(input: CreatePostgresRequest, org: string): Promise<PgCreateOutcome> {
    const request = sendCommand<PgCreateRequest, PgClusterView>(
      this.nc,
      subjects.postgres.create,
      {
        command_id: `create-pg-${randomBytes(8).toString("hex")}`,
        name: input.name,
        org,
        region: input.region || this.opts.defaultRegion,
        vm_size: input.vm_size || DEFAULT_PG_VM_SIZE,
        volume_size_gb: input.volume_size_gb ?? 1,
        initial_size: input.initial_cluster_size ?? 1,
      },
      CREATE_TIMEOUT_MS,
    );
    return this.doneOrPending(request, input.name);
  }

  /**
   * A create's (or a restore's) answer: the cluster when the manager answers within createWaitMs,
   * else `done: false` while it goes on.
   */
  private async doneOrPending(request: Promise<PgClusterView>, name: string): Promise<PgCreateOutcome> {
    // A refusal (a bad input, a taken name) comes back at once and is the answer; a create that is
    // still making members goes on in the manager, which records each step, and the caller follows
    // it through status. Its end is only logged here: never the reply itself, which may hold a password.
    let timer: NodeJS.Timeout | undefined;
    const pending = new Promise<PgCreateOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ done: false }), this.createWaitMs);
    });
    const outcome = await Promise.race([
      request.then((cluster): PgCreateOutcome => ({ done: true, cluster })),
      pending,
    ]).finally(() => clearTimeout(timer));
    if (!outcome.done) {
      request.then(
        (cluster) =>
          this.opts.logger.info(
            { cluster: cluster.name, status: cluster.status },
            "postgres cluster created",
          ),
        (err: unknown) => this.opts.logger.warn({ err, cluster: name }, "postgres cluster create failed"),
      );
    }
    return outcome;
  }

  async list(org: string): Promise<PgClusterView[]> {
    const reply = await sendCommand<PgListRequest, PgClusterList>(
      this.nc,
      subjects.postgres.list,
      { org },
      READ_TIMEOUT_MS,
    );
    return reply.clusters;
  }

  status(cluster: string): Promise<PgClusterView> {
    return sendCommand<PgClusterRef, PgClusterView>(
      this.nc,
      subjects.postgres.status,
      { cluster },
      READ_TIMEOUT_MS,
    );
  }

  attach(
    cluster: string,
    input: { app: string; database_name?: string; variable_name?: string },
  ): Promise<PgAttachReply> {
    return sendCommand<PgAttachRequest, PgAttachReply>(
      this.nc,
      subjects.postgres.attach,
      { cluster, ...input },
      ATTACH_TIMEOUT_MS,
    );
  }

  async detach(cluster: string, app: string): Promise<void> {
    await sendCommand<PgDetachRequest, unknown>(
      this.nc,
      subjects.postgres.detach,
      { cluster, app },
      ATTACH_TIMEOUT_MS,
    );
  }

  failover(cluster: string): Promise<PgFailoverReply> {
    return sendCommand<PgClusterRef, PgFailoverReply>(
      this.nc,
      subjects.postgres.failover,
      { cluster },
      FAILOVER_TIMEOUT_MS,
    );
  }

  import(cluster: string, input: ImportRequest): Promise<PgImportReply> {
    return sendCommand<PgImportRequest, PgImportReply>(
      this.nc,
      subjects.postgres.import,
      {
        cluster,
        source_url: input.source_url,
        options: {
          ...(input.clean ? { clean: true } : {}),
          ...(input.data_only ? { data_only: true } : {}),
          ...(input.schema_only ? { schema_only: true } : {}),
        },
      },
      IMPORT_TIMEOUT_MS,
    );
  }

  backupCreate(cluster: string): Promise<PgBackupView> {
    return sendCommand<PgClusterRef, PgBackupView>(
      this.nc,
      subjects.postgres.backupCreate,
      { cluster },
      BACKUP_TIMEOUT_MS,
    );
  }

  async backupList(cluster: string): Promise<PgBackupView[]> {
    const reply = await sendCommand<PgClusterRef, PgBackupList>(
      this.nc,
      subjects.postgres.backupList,
      { cluster },
      READ_TIMEOUT_MS,
    );
    return reply.backups;
  }

  backupRestore(cluster: string, input: RestoreRequest): Promise<PgCreateOutcome> {
    const request = sendCommand<PgRestoreRequest, PgClusterView>(
      this.nc,
      subjects.postgres.backupRestore,
      {
        command_id: `restore-pg-${randomBytes(8).toString("hex")}`,
        cluster,
        name: input.name,
        ...(input.time ? { time: input.time } : {}),
      },
      CREATE_TIMEOUT_MS,
    );
    return this.doneOrPending(request, input.name);
  }

  async destroy(cluster: string): Promise<void> {
    await sendCommand<PgClusterRef, unknown>(
      this.nc,
      subjects.postgres.destroy,
      { cluster },
      FAILOVER_TIMEOUT_MS,
    );
  }
}
