export type { ManagerTimings } from "./cluster-ops.js";
export type { ClusterLister } from "./commands.js";
export { config } from "./config.js";
export type { PostgresManagerOptions } from "./manager.js";
export { FAILOVER_LEASE, foldLister, PostgresManager } from "./manager.js";
export type { MemberStatus } from "./member-client.js";
