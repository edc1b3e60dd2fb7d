export type { AppCommand, AppEvent, AppState } from "./apps/app.js";
export { appDecider, appsStream, RESERVED_APP_NAMES } from "./apps/app.js";
export { APP_NAME_PATTERN } from "./apps/names.js";
export type { AuditCommand, AuditEntry, AuditEvent, AuditState } from "./audit/audit.js";
export { auditAggregateId, auditDecider, auditEntryOf, auditStream } from "./audit/audit.js";
export type { BuildCommand, BuildEvent, BuildRequest, BuildState, BuildStatus } from "./builds/build.js";
export {
  BUILD_CONTEXTS_BUCKET,
  buildAggregateId,
  buildDecider,
  buildIsOver,
  buildsStream,
} from "./builds/build.js";
export type {
  HostCommand,
  HostEvent,
  HostSpec,
  HostState,
  KnownHost,
  Reservation,
  VolumeReservation,
} from "./hosts/host.js";
export { hostDecider, hostHasDiskRoom, hostHasRoom, hostsStream } from "./hosts/host.js";
export { defaultMachineName, newInstanceId, newMachineId } from "./machines/ids.js";
export type {
  ExistingMachine,
  LeaseGuard,
  MachineCheck,
  MachineCommand,
  MachineEvent,
  MachineLease,
  MachineState,
  MachineStatus,
} from "./machines/machine.js";
export {
  MACHINE_METADATA_LIMITS,
  machineAggregateId,
  machineDecider,
  machineMayRun,
  machineMetadataIssue,
  machineMetadataOf,
  machinesStream,
} from "./machines/machine.js";
export type { OrgCommand, OrgEvent, OrgState, TokenRecord } from "./orgs/org.js";
export { OPERATOR_AGGREGATE, ORG_SLUG, orgDecider, orgsStream } from "./orgs/org.js";
export type {
  CreatePgClusterSpec,
  PgAttachment,
  PgBackup,
  PgCluster,
  PgClusterCommand,
  PgClusterEvent,
  PgClusterState,
  PgClusterStatus,
  PgFailover,
  PgFailoverKind,
  PgMember,
  PgRejoinMethod,
  PgRestoreSource,
  PgRole,
} from "./pgclusters/pgcluster.js";
export {
  defaultPgIdentifier,
  MAX_PG_CLUSTER_SIZE,
  MIN_PG_CLUSTER_SIZE,
  PG_IDENTIFIER_PATTERN,
  pgClusterAggregateId,
  pgClusterDecider,
  pgClusterNameProblem,
  pgClusterSizeProblem,
  pgclustersStream,
  pgIdentifierProblem,
} from "./pgclusters/pgcluster.js";
export type { EdgeRelease } from "./releases/edge.js";
export { isEdgeRelease, liveEdgeRelease } from "./releases/edge.js";
export type {
  CommandKind,
  CommandRun,
  Release,
  ReleaseCommand,
  ReleaseEdge,
  ReleaseEvent,
  ReleaseGroup,
  ReleaseStatus,
  ReleaseStrategy,
  ReleasesState,
} from "./releases/release.js";
export {
  commandKey,
  commandRun,
  currentRelease,
  EDGE_BUNDLE_DIGEST,
  inProgress,
  RELEASE_STRATEGIES,
  releaseDecider,
  releasesStream,
  validMaxUnavailable,
} from "./releases/release.js";
export type {
  ScaleAction,
  ScaleActionKind,
  ScaleDecision,
  ScaleInputs,
  ScaleOutcome,
  ScalingCommand,
  ScalingEvent,
  ScalingState,
} from "./scaling/scaling.js";
export { KEPT_DECISIONS, scalingDecider, scalingStream, unfinishedActions } from "./scaling/scaling.js";
export type {
  DeployedSecret,
  SealedValue,
  SecretsCommand,
  SecretsEvent,
  SecretsState,
  StagedChange,
} from "./secrets/secrets.js";
export { appSecretsId, MAX_SECRETS, orgSecretsId, secretsDecider, secretsStream } from "./secrets/secrets.js";
export type {
  CreateVolumeSpec,
  Volume,
  VolumeCommand,
  VolumeEvent,
  VolumeSnapshot,
  VolumeState,
  VolumeStatus,
} from "./volumes/volume.js";
export {
  DEFAULT_SNAPSHOT_RETENTION,
  expiredSnapshots,
  isSnapshotId,
  isVolumeId,
  MAX_SNAPSHOT_RETENTION,
  MAX_VOLUME_SIZE_GB,
  MIN_SNAPSHOT_RETENTION,
  newSnapshotId,
  newVolumeId,
  SNAPSHOT_ID_EXAMPLE,
  SNAPSHOT_ID_PATTERN,
  snapshotRetentionProblem,
  VOLUME_ID_EXAMPLE,
  VOLUME_ID_PATTERN,
  VOLUME_NAME_PATTERN,
  VOLUME_SNAPSHOTS_BUCKET,
  volumeAggregateId,
  volumeDecider,
  volumeIsUsable,
  volumeNameProblem,
  volumeSizeProblem,
  volumesStream,
} from "./volumes/volume.js";
export type {
  DeliveryAttempt,
  RetryPolicy,
  Webhook,
  WebhookCommand,
  WebhookDelivery,
  WebhookEvent,
  WebhookState,
} from "./webhooks/webhook.js";
export {
  EVENT_TYPE_PATTERN,
  givesUp,
  MAX_LOGGED_DELIVERIES,
  nextAttemptAtMs,
  retryDelayMs,
  WEBHOOK_ID_PATTERN,
  webhookDecider,
  webhookMatches,
  webhooksStream,
  webhookUrlProblem,
} from "./webhooks/webhook.js";
