import { AppNameSchema, CPU_VM_SIZES, RegionSchema } from "@hangar/config";
import {
  MAX_PG_CLUSTER_SIZE,
  MAX_VOLUME_SIZE_GB,
  MIN_PG_CLUSTER_SIZE,
  PG_IDENTIFIER_PATTERN,
} from "@hangar/domain";
import { isSecretName } from "@hangar/secrets";
import type {
  PgAttachReply,
  PgBackupView,
  PgClusterView,
  PgFailoverReply,
  PgImportReply,
} from "@hangar/service";
import { z } from "zod";
import type { RequestContext } from "../http/backend.js";

/** The VM size a cluster's members get when the create names none (flyctl's development default). */
export const DEFAULT_PG_VM_SIZE = "shared-cpu-1x";

const OrgSlugSchema = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "expected lowercase letters, digits and dashes");

const IdentifierSchema = z
  .string()
  .regex(
    PG_IDENTIFIER_PATTERN,
    "expected 1-63 lowercase letters, digits and underscores, not starting with a digit",
  );

/**
 * `POST /v1/postgres`: flyctl's `postgres create` flags. `org_slug` defaults to the token's org (as an
 * app's create), `region` to the platform's, `vm_size` to shared-cpu-1x, one 1 GB volume per member.
 */
export const CreatePostgresRequestSchema = z.looseObject({
  name: AppNameSchema,
  org_slug: OrgSlugSchema.nullish(),
  region: RegionSchema.nullish(),
  vm_size: z
    .string()
    .refine((size) => size in CPU_VM_SIZES, `expected one of ${Object.keys(CPU_VM_SIZES).join(", ")}`)
    .nullish(),
  volume_size_gb: z.number().int().min(1).max(MAX_VOLUME_SIZE_GB).nullish(),
  initial_cluster_size: z.number().int().min(MIN_PG_CLUSTER_SIZE).max(MAX_PG_CLUSTER_SIZE).nullish(),
});
export type CreatePostgresRequest = z.output<typeof CreatePostgresRequestSchema>;

/** `POST /v1/postgres/{name}/attach`: the app, and the database and variable names when not the defaults. */
export const AttachRequestSchema = z.looseObject({
  app: AppNameSchema,
  database_name: IdentifierSchema.nullish(),
  variable_name: z
    .string()
    .refine(isSecretName, "expected an environment variable name (letters, digits and _)")
    .nullish(),
});

/** `POST /v1/postgres/{name}/detach`: the app whose database and user go. */
export const DetachRequestSchema = z.looseObject({ app: AppNameSchema });

/**
 * `POST /v1/postgres/{name}/import`: flyctl's `postgres import`. The URL is checked again by the
 * manager (scheme, host, database name); here only that it is a postgres:// or postgresql:// string.
 */
export const ImportRequestSchema = z.looseObject({
  source_url: z
    .string()
    .max(2048)
    .regex(/^postgres(?:ql)?:\/\//, "expected a postgres:// or postgresql:// URL"),
  clean: z.boolean().nullish(),
  data_only: z.boolean().nullish(),
  schema_only: z.boolean().nullish(),
});
export type ImportRequest = z.output<typeof ImportRequestSchema>;

/**
 * `POST /v1/postgres/{name}/backups/restore`: a new cluster `name` from the cluster's archive at
 * `time` (RFC 3339 with a zone; none: the end of the archive).
 */
export const RestoreRequestSchema = z.looseObject({
  name: AppNameSchema,
  time: z.iso.datetime({ offset: true }).nullish(),
});
export type RestoreRequest = z.output<typeof RestoreRequestSchema>;

/** A create's outcome: the ready cluster, or still in progress (the caller polls its status). */
export type PgCreateOutcome = { done: true; cluster: PgClusterView } | { done: false };

/**
 * What the postgres routes need from the platform (the manager's commands), once the caller is
 * authorized. Failures are ApiErrors or CommandErrors, mapped by their code (http/errors.ts).
 */
export interface PostgresBackend {
  /** Starts a cluster in `org`; answers it when ready soon enough, else `done: false` while it goes on. */
  create(input: CreatePostgresRequest, org: string, ctx: RequestContext): Promise<PgCreateOutcome>;
  list(org: string, ctx: RequestContext): Promise<PgClusterView[]>;
  status(cluster: string, ctx: RequestContext): Promise<PgClusterView>;
  /** Makes the app's database and user (or resets the password of existing ones). */
  attach(
    cluster: string,
    input: { app: string; database_name?: string; variable_name?: string },
    ctx: RequestContext,
  ): Promise<PgAttachReply>;
  detach(cluster: string, app: string, ctx: RequestContext): Promise<void>;
  failover(cluster: string, ctx: RequestContext): Promise<PgFailoverReply>;
  /** Copies a database from `input.source_url` into the cluster; answers once the importer has ended. */
  import(cluster: string, input: ImportRequest, ctx: RequestContext): Promise<PgImportReply>;
  destroy(cluster: string, ctx: RequestContext): Promise<void>;
  /** Takes a base backup of the primary; answers it once stored. */
  backupCreate(cluster: string, ctx: RequestContext): Promise<PgBackupView>;
  /** The cluster's base backups, newest first. */
  backupList(cluster: string, ctx: RequestContext): Promise<PgBackupView[]>;
  /** Restores into a new cluster in the source's org; answers it when ready soon enough, as create. */
  backupRestore(cluster: string, input: RestoreRequest, ctx: RequestContext): Promise<PgCreateOutcome>;
}
