export type { AggregateViewOptions, ViewChange } from "./aggregate-view.js";
export { AggregateView } from "./aggregate-view.js";
export type { AppSecretsMetric } from "./app-secrets.js";
export { AppSecrets, AppSecretsError } from "./app-secrets.js";
export type { CodedError } from "./bus.js";
export { CommandError, sendCommand, serveCommands } from "./bus.js";
export { KeyedSerial } from "./keyed-serial.js";
export type { KvBucketOptions } from "./kv-bucket.js";
export { openKvBucket } from "./kv-bucket.js";
export { onShutdown } from "./lifecycle.js";
export type { MachineChange, MachineEntry, MachinesViewOptions } from "./machines-view.js";
export { MachinesView } from "./machines-view.js";
export type { NatsAuth } from "./nats.js";
export { connectNats, inboxPrefixOf, natsAuthOptions, natsUserName } from "./nats.js";
export type { AuthorizedUser, NatsCredentials } from "./nats-credentials.js";
export {
  credsFileOf,
  natsAuthorization,
  placeholderAuthorization,
  unheldPublicKey,
  writeNatsCredentials,
} from "./nats-credentials.js";
export type { BucketGrant, NatsPermissions, NatsUserSpec, StreamGrant } from "./nats-permissions.js";
export {
  appendsTo,
  hostAgentUser,
  hostIdFromName,
  natsUserOf,
  natsUsers,
  OPERATOR_USER,
  permissionsOf,
  SERVICE_USERS,
  SUBSCRIBER_USER,
} from "./nats-permissions.js";
export { permissionsMarkdown, withPermissionsMarkdown } from "./nats-permissions-doc.js";
export type { ViolationLogger } from "./nats-violations.js";
export { reportPermissionViolations } from "./nats-violations.js";
export type { HealthReport, OpsServer, OpsServerOptions } from "./ops-server.js";
export { startOpsServer } from "./ops-server.js";
export { OrgSecrets } from "./org-secrets.js";
export type { MachineCreator, NewMachine, PlacedMachine } from "./place-machine.js";
export { gpusOf, placeThenCreateMachine } from "./place-machine.js";
export { isPrivateAddress, publicOnlyLookup } from "./private-addresses.js";
export type { SequencedView } from "./read-your-writes.js";
export { handleThenWait } from "./read-your-writes.js";
export type { ConnectionWatch } from "./readiness.js";
export { readiness, watchConnection } from "./readiness.js";
export type { RunningService, RunServiceOptions, ServiceContext } from "./run-service.js";
export { runService } from "./run-service.js";
export type { SealedSecret, SecretsScopeWriter } from "./secrets-writer.js";
export { sealSecrets, secretsDataKey } from "./secrets-writer.js";
export type { ServiceConfig, ServiceSettings, SettingMeta, SharedSettings } from "./settings.js";
export {
  ConfigError,
  defineServiceConfig,
  partlySharedSettings,
  port,
  setting,
  settingMeta,
  settingPrefix,
  settingsTable,
  sharedSettings,
} from "./settings.js";
export type {
  ExecTarget,
  HostExecReply,
  HostExecRequest,
  HostHeartbeat,
  HostLogsReply,
  HostLogsRequest,
  HostPsRequest,
  HostTunnelReply,
  HostTunnelRequest,
  HostVolumeCreateRequest,
  HostVolumeDeleteRequest,
  HostVolumeExtendRequest,
  HostVolumeSnapshotReply,
  HostVolumeSnapshotRequest,
  HostVolumeStatReply,
  HostVolumeStatRequest,
  ListenSocket,
  LoadSample,
  MachineLoad,
  MachineLogLine,
  PgAttachReply,
  PgAttachRequest,
  PgBackupList,
  PgBackupView,
  PgClusterList,
  PgClusterRef,
  PgClusterView,
  PgCreateRequest,
  PgDetachRequest,
  PgFailoverReply,
  PgImportReply,
  PgImportRequest,
  PgListRequest,
  PgMemberView,
  PgRestoreRequest,
  PlaceRequest,
  PlaceResult,
  PlaceVolumeRequest,
  ProcessStat,
  ProxyHeartbeat,
  SignalRequest,
  TunnelTarget,
  VolumeAttachRequest,
  VolumeCommandReply,
  VolumeCreateRequest,
  VolumeExtendRequest,
  VolumeRef,
  VolumeReply,
  VolumeSnapshotRequest,
  VolumeStat,
  VolumeUpdateRequest,
  WakeRequest,
} from "./subjects.js";
export { EDGE_LOG_INSTANCE_PREFIX, subjects } from "./subjects.js";
export type { SnapshotObjects } from "./volume-snapshots.js";
export { deleteSnapshotObject, snapshotObjectName } from "./volume-snapshots.js";
export type { VolumeChange, VolumesViewOptions } from "./volumes-view.js";
export { VolumesView } from "./volumes-view.js";
export type {
  WebhookAttemptView,
  WebhookCreatedReply,
  WebhookCreateRequest,
  WebhookDeliveryList,
  WebhookDeliveryView,
  WebhookList,
  WebhookListRequest,
  WebhookRedeliverRequest,
  WebhookRef,
  WebhookView,
} from "./webhook-messages.js";
