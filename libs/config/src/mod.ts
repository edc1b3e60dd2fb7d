export type { AppConfig, AppFile, AppHttpService, AppMountConfig, AppService, AppVm } from "./app-config.js";
export { AppConfigSchema, AutoStopSchema, DEPLOY_STRATEGIES, UNSUPPORTED_KEYS } from "./app-config.js";
export type { MachineCheck } from "./checks.js";
export { CheckHeaderSchema, MachineCheckSchema } from "./checks.js";
export type { DirImageConfig, InitProgram } from "./dir-image.js";
export {
  DIR_IMAGES_OFF,
  DirImageRootsSchema,
  dirImageRefusal,
  folderOutsideRoots,
  initPrograms,
  isUnder,
  programOutsideRoots,
} from "./dir-image.js";
export { DurationSchema, durationToMs, formatGoDuration, parseDuration } from "./duration.js";
export type { EdgeConfig } from "./edge.js";
export {
  EDGE_BUNDLE_MAX_BYTES,
  EDGE_BUNDLES_BUCKET,
  EDGE_BUNDLES_MAX_BYTES,
  EDGE_CACHE_BUCKET,
  EDGE_CACHE_MAX_BYTES,
  EDGE_CPU_MS_MAX,
  EDGE_MEMORY_MB_MAX,
  EDGE_MEMORY_MB_MIN,
  EdgeConfigSchema,
  edgeBundleName,
} from "./edge.js";
export type { ReleasedAppFile } from "./files.js";
export {
  decodeBase64,
  FileWithoutContentError,
  guestPathProblem,
  isBase64,
  LocalFileNotReadError,
  machineFile,
} from "./files.js";
export { dirImagePath, ImageSchema } from "./image.js";
export type { AppMachineCheck, TestedMachine } from "./machine-checks.js";
export {
  MachineCheckWithoutCommandError,
  machineChecksFor,
  TEST_MACHINE_GROUP,
  testMachineConfig,
} from "./machine-checks.js";
export type { MachineConfig, MachineConfigInput, MachineGuest } from "./machine-config.js";
export {
  DnsConfigSchema,
  GUEST_DEFAULTS,
  MachineConfigSchema,
  MachineFileSchema,
  MachineGuestSchema,
  MachineInitSchema,
  MachineMetricsSchema,
  MachineMountSchema,
  MachineProcessSchema,
  MachineRestartSchema,
  StaticSchema,
  StopConfigSchema,
} from "./machine-config.js";
export type { MachineFromAppOptions } from "./machine-from-app.js";
export {
  CheckWithoutPortError,
  DEFAULT_PROCESS_GROUP,
  defaultProcessGroup,
  machineConfigFromApp,
  processGroups,
  releaseCommandGuest,
  UnknownProcessGroupError,
} from "./machine-from-app.js";
export type { AppMount, MachineMountFromApp, MountIssue, MountVolume } from "./mounts.js";
export {
  DEFAULT_VOLUME_SIZE_GB,
  machineMount,
  mountIssues,
  mountVolume,
  parseVolumeSizeGb,
} from "./mounts.js";
export { AppNameSchema, MachineIdSchema, RegionSchema } from "./names.js";
export type { AppConfigIssue, ParsedAppConfig } from "./parse-app-config.js";
export { AppConfigError, parseAppConfig } from "./parse-app-config.js";
export type { ProxyHttpOptions } from "./proxy-options.js";
export { proxyHttpOptions } from "./proxy-options.js";
export { ReleaseConfigSchema } from "./release-config.js";
export type {
  CreateAppRequest,
  CreateMachineRequest,
  LeaseRequest,
  SignalRequest,
  StopRequest,
  UpdateMachineRequest,
} from "./requests.js";
export {
  CreateAppRequestSchema,
  CreateMachineRequestSchema,
  LeaseRequestSchema,
  SignalRequestSchema,
  StopRequestSchema,
  UpdateMachineRequestSchema,
} from "./requests.js";
export type { ResponseRules } from "./response-headers.js";
export { applyResponseRules, responseRules } from "./response-headers.js";
export type { AutoStop, ScalingSettings } from "./scaling.js";
export {
  DEFAULT_MAX_MACHINES_RUNNING,
  DEFAULT_SCALING,
  DEFAULT_SOFT_LIMIT,
  scalingSettings,
} from "./scaling.js";
export type { MachineService } from "./services.js";
export { ConcurrencySchema, MachinePortSchema, MachineServiceSchema } from "./services.js";
export { splitShellWords } from "./shell-words.js";
export type { Signal, StopSignal } from "./signals.js";
export { SIGNALS, SignalSchema, STOP_SIGNALS, StopSignalSchema } from "./signals.js";
export type { MachineStatic, StaticFileEntry, StaticLookup, StaticsManifest } from "./statics.js";
export {
  guestPathParts,
  imageStaticsOf,
  lookupStatic,
  STATICS_BUCKET,
  STATICS_MAX_FILE_BYTES,
  STATICS_MAX_FILES,
  STATICS_MAX_TOTAL_BYTES,
  staticContentType,
  staticsFileName,
  staticsManifestName,
  staticsSetId,
} from "./statics.js";
export type { TomlPath } from "./toml-locator.js";
export { TomlLocator } from "./toml-locator.js";
export type { ExecEnd } from "./tunnel.js";
export {
  adoptForRelay,
  connectForRelay,
  ExecFrameDecoder,
  ExecFrameKind,
  encodeExecEnd,
  encodeExecFrame,
  MAX_FRAME_BYTES,
  parseExecEnd,
  pipeBothWays,
  RELAY_READ_BYTES,
  TUNNEL_PROTOCOL,
  upgradeForRelay,
} from "./tunnel.js";
export type { Validation } from "./validate.js";
export { describeIssues, validate } from "./validate.js";
export type { VmSize } from "./vm-sizes.js";
export { CPU_VM_SIZES, DEFAULT_GPU_VM_SIZE, DEFAULT_VM_SIZE, parseMemoryMb, VM_SIZES } from "./vm-sizes.js";
