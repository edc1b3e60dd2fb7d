import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Where free ports are picked from: at or above this, and below the kernel's ephemeral range. */
const LOWEST_PORT = 10_000;

/** Ports this process handed out: a picked port stays free until its server binds it, so it is never picked twice. */
const handedOut = new Set<number>();

/**
 * The lowest port of the kernel's ephemeral range (ports it gives outgoing connections), read once. A
 * port picked inside it can be taken as some connection's local port between the pick and the bind of
 * the server it is for (a test platform's proxy binds seconds later, and failed with EADDRINUSE), so
 * free ports come from below it.
 */
export const ephemeralLow: number = (() => {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    return Number(low) || 32_768;
  } catch {
    return 32_768;
  }
})();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    // Every address: a server on 0.0.0.0 or 127.0.0.1 must both find it free.
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port nothing listens on, below the kernel's ephemeral range (so no outgoing connection takes it
 * before its server binds it), never handed out twice by this process.
 */
export async function freePort(): Promise<number> {
  // A host whose ephemeral range starts low leaves a range above LOWEST_PORT all the same.
  const high = Math.max(ephemeralLow - 1, LOWEST_PORT + 1_000);
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * (high - LOWEST_PORT + 1));
    if (handedOut.has(port)) continue;
    // Taken before the check, so two picks at the same time cannot both get it.
    handedOut.add(port);
    if (await canListen(port)) return port;
    handedOut.delete(port);
  }
  throw new Error(`no free TCP port between ${LOWEST_PORT} and ${high}`);
}
