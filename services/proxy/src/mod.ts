export * from "./engine/mod.js";
export type { LoadPublisherOptions } from "./load.js";
export { ACTIVE_WINDOW_MS, LoadPublisher, proxyIdOf } from "./load.js";
export type {
  AppRoute as StreamAppRoute,
  RouteBackend,
  StreamRouteTableOptions,
} from "./routes/route-table.js";
export { StreamRouteTable } from "./routes/route-table.js";
export type { CommandWakerOptions } from "./wake.js";
export { CommandWaker } from "./wake.js";
