// The proxy's engine alone, for `pnpm profile:proxy` (tests/bench/profile/proxy.ts): one app routed to
// the machine at HANGAR_PROFILE_UPSTREAM (host:port), metrics and tracing on as in the service,
// listening on HANGAR_PROFILE_PORT.
// Exits on SIGTERM so node writes its --cpu-prof profile. Asked "mark" then "report" over IPC, it
// answers the CPU time (user + system, µs) it spent in between.
import { startTelemetry } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { createProxy } from "../../../services/proxy/src/engine/mod.js";

// As runService does: spans are real (ids, context) even with no exporter.
const registry = new Registry();
startTelemetry({ serviceName: "hangar-proxy", metrics: registry });

const [address, port] = (process.env.HANGAR_PROFILE_UPSTREAM ?? "").split(":");
if (!address || !port) throw new Error("HANGAR_PROFILE_UPSTREAM=<host>:<port> is required");
const route = { app: "edge", backends: [{ machineId: "m1", address, port: Number(port) }] };
const proxy = createProxy({
  routes: { lookup: (app) => (app === "edge" ? route : undefined) },
  region: "local",
  registry,
});
proxy.server.listen(Number(process.env.HANGAR_PROFILE_PORT), "127.0.0.1", () => process.send?.("listening"));
let mark = process.cpuUsage();
process.on("message", (m) => {
  if (m === "mark") mark = process.cpuUsage();
  if (m === "report") {
    const used = process.cpuUsage(mark);
    process.send?.({ cpuUs: used.user + used.system });
  }
});
process.on("SIGTERM", () => {
  proxy.server.closeAllConnections();
  process.exit(0);
});
