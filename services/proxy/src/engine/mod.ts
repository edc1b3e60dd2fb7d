export type { Limits } from "./balancer.js";
export type { AppStats, BackendStats, EdgeProxy, ProxyOptions, ProxyStats } from "./proxy.js";
export { CLOSE_GRACE_MS, createProxy, QUEUE_DEFAULTS } from "./proxy.js";
export type { AppRoute, Backend, RouteTable, SleepingMachine } from "./route-table.js";
export type { Waker } from "./waker.js";
export { WakeRefusedError, wakeOrder } from "./waker.js";
