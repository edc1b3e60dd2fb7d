export { ApiError, MemberAgent, type MemberStatus, type ReplicationView } from "./agent.js";
export {
  archiveCommand,
  type BaseBackupResult,
  backupFolders,
  backupLabel,
  MemberBackups,
  recoveryArgs,
  recoveryTargetProblem,
  WAL_FILE_NAME,
} from "./backup.js";
export { bundleMemberAgent } from "./bundle.js";
export { controlServer } from "./control.js";
export * from "./logic.js";
export { Router } from "./router.js";
export { type MemberSettings, memberSettings, SettingsError } from "./settings.js";
