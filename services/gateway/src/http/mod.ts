export type { ApiDeps } from "./api.js";
export { createApi } from "./api.js";
export type {
  AppListView,
  AppView,
  CheckStatusView,
  ImageRefView,
  LeaseOptions,
  LeaseView,
  MachineEventView,
  MachineListFilter,
  MachineStartView,
  MachineState,
  MachineSummaryView,
  MachinesBackend,
  MachineVersionView,
  MachineView,
  RequestContext,
  RestartOptions,
  StopOptions,
  WaitOptions,
  WaitState,
} from "./backend.js";
export { MACHINE_STATES, WAIT_STATES } from "./backend.js";
export type { ApiEnv } from "./context.js";
export { LEASE_NONCE_HEADER } from "./context.js";
export type { ErrorBody, ErrorCode } from "./errors.js";
export { ApiError, ERROR_STATUS } from "./errors.js";
export { REQUEST_ID_HEADER } from "./request-id.js";
export type { ApiServer } from "./server.js";
export { startApiServer } from "./server.js";
