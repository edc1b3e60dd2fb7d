export { MIGRATIONS, migrateToLatest, readModelMigrator } from "./migrate.js";
export { clustersProjection, READ_MODEL_PROJECTION, startReadModel } from "./projection.js";
export type { PgClusterRecord, PgMemberRecord } from "./queries.js";
export { clusterRow, listClusters } from "./queries.js";
export type { Database } from "./schema.js";
