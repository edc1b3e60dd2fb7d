// A small HTTP app: answers every request with a greeting and the machine that served it.
// Hangar (like Fly) tells it where to listen through PORT, and who it is through FLY_* variables.
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 8080);
const machine = process.env.FLY_MACHINE_ID ?? "local";
const region = process.env.FLY_REGION ?? "local";
const started = new Date().toISOString();
// Requests this process answered: a machine resumed from suspend keeps counting, a restarted one starts over.
let served = 0;
// Requests in this process now, and the most ever: what the proxy's hard_limit bounds.
let inFlight = 0;
let maxInFlight = 0;

const server = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
    return;
  }
  // `?hold=<ms>` answers after that long (at most a minute): a long-lived request, to load the autoscaler.
  const hold = req.url?.includes("hold=")
    ? Math.min(Number(new URL(req.url, "http://x").searchParams.get("hold")) || 0, 60_000)
    : 0;
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  if (hold > 0) setTimeout(() => answer(req, res), hold);
  else answer(req, res);
});

function answer(req, res) {
  served++;
  inFlight--;
  const body = JSON.stringify({
    hello: process.env.GREETING ?? "world",
    machine_id: machine,
    region,
    started,
    path: req.url,
    client_ip: req.headers["fly-client-ip"] ?? null,
    pid: process.pid,
    served,
    in_flight: inFlight + 1,
    max_in_flight: maxInFlight,
  });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

server.listen(port, "0.0.0.0", () => {
  console.log(`hello listening on ${port} as machine ${machine} in ${region}`);
});

// Fly stops machines with SIGINT by default; finish what is in flight, then exit.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.log(`hello got ${signal}, closing`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
