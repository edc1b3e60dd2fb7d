export {
  BUNDLE_ROOT,
  CATATONIT,
  CRUN_ROOT,
  type CrunExecProcess,
  containerExists,
  containerInit,
  crunExec,
  crunGlobalArgs,
  crunPath,
  crunRunArgv,
  deleteContainer,
  type ExecRequest,
  type ExecResult,
  type ExecSpawnRequest,
  listContainers,
  prepareCrunHost,
  type RunContainerOptions,
  removeBundle,
  runContainer,
  SECCOMP_CACHE,
  spawnCrunExec,
  untilCreated,
  writeBundle,
} from "./crun.js";
export { BUILT_IN_EGRESS_DENY } from "./egress.js";
export { checked, ipv4ToNumber, numberToIpv4, withDirLock } from "./host-util.js";
export { chownToRange, mountIdmappedOverlay } from "./idmap.js";
export {
  CONTAINERS_SECCOMP_PROFILE,
  convertProfile,
  defaultSeccomp,
  loadContainersProfile,
  type OciSeccomp,
} from "./seccomp.js";
export {
  DEFAULT_CAPABILITIES,
  type IdRange,
  INIT_PATH,
  type RuntimeBind,
  type RuntimeNetwork,
  type RuntimeSpec,
  type RuntimeSpecOptions,
  runtimeSpec,
} from "./spec.js";
