export type { AppStats, BackendStats, EdgeProxy, ProxyOptions, ProxyStats } from "./proxy.js";
export { CLOSE_GRACE_MS, createProxy } from "./proxy.js";
export type { AppRoute, Backend, RouteTable } from "./route-table.js";
