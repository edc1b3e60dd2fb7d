// A load balancer over three origins: two random choices by health (recent statuses and errors,
// fading with time), a request that gets an error or a 5xx retried on another origin.
// GET /_balancer answers what the balancer knows of each origin.
import { balancer } from "@hangar/edge-std";

/** The origins: ORIGINS (comma-separated) when set, else the apps' .internal names, or local ports in development. */
function origins(env) {
  if (env.ORIGINS) return env.ORIGINS.split(",").map((o) => o.trim());
  const local = app.env === "development";
  return [1, 2, 3].map((i) => (local ? `http://localhost:${3000 + i}` : `http://web-${i}.internal`));
}

let lb;

export default {
  fetch(request, env) {
    lb ??= balancer(origins(env));
    if (new URL(request.url).pathname === "/_balancer") {
      const stats = lb.backends.map((b) => ({
        origin: b.name,
        requests: b.requests,
        failures: b.failures,
        health: Number(b.health().toFixed(3)),
      }));
      return Response.json(stats);
    }
    return lb(request);
  },
};
