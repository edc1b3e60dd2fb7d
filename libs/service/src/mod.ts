export type { AggregateViewOptions, ViewChange } from "./aggregate-view.js";
export { AggregateView } from "./aggregate-view.js";
export type { CodedError } from "./bus.js";
export { CommandError, sendCommand, serveCommands } from "./bus.js";
export { env, envNumber, onShutdown } from "./lifecycle.js";
export { connectNats } from "./nats.js";
export type { HealthReport, OpsServer, OpsServerOptions } from "./ops-server.js";
export { startOpsServer } from "./ops-server.js";
export type {
  HostHeartbeat,
  LoadSample,
  MachineLoad,
  PlaceRequest,
  PlaceResult,
  ProxyHeartbeat,
  SignalRequest,
} from "./subjects.js";
export { subjects } from "./subjects.js";
