export * from "./engine/mod.js";
export type { AppRoute as StreamAppRoute, RouteBackend } from "./routes/route-table.js";
export { StreamRouteTable } from "./routes/route-table.js";
