import { spawn } from "node:child_process";
import type { Socket as DgramSocket } from "node:dgram";
import type { Server } from "node:net";
import { IP } from "../driver/netns.js";

/** The resolver's listening sockets: UDP and TCP on the same address and port. */
export interface ResolverSockets {
  udp: DgramSocket;
  tcp: Server;
}

/**
 * Binds both sockets and hands them to the parent over IPC, then exits. Run with `node -e` (no
 * file to find whether the agent runs from source or from dist) and, for another namespace, under
 * `ip netns exec`: a socket stays in the namespace it was created in, whoever holds it later.
 */
const OPENER = `
const dgram = require("node:dgram");
const net = require("node:net");
const [address, port] = [process.argv[1], Number(process.argv[2])];
const fail = (err) => process.send({ error: String(err && err.message || err) }, () => process.exit(1));
const udp = dgram.createSocket({ type: "udp6", ipv6Only: true });
udp.once("error", fail);
udp.bind(port, address, () => {
  const tcp = net.createServer();
  tcp.once("error", fail);
  // Port 0 (tests): the free port UDP got, for TCP too.
  tcp.listen({ port: udp.address().port, host: address, ipv6Only: true }, () => {
    process.send({ socket: "udp" }, udp);
    process.send({ socket: "tcp" }, tcp, () => process.exit(0));
  });
});
`;

/**
 * Opens the resolver's sockets on [address]:port in network namespace `netns` (this process's own
 * when none). The address must be there already: HostNetwork.open puts it on the namespace's loopback.
 */
export async function openResolverSockets(o: {
  netns?: string;
  address: string;
  port: number;
}): Promise<ResolverSockets> {
  const argv = [process.execPath, "-e", OPENER, o.address, String(o.port)];
  const [command, ...args] = o.netns ? [IP, "netns", "exec", o.netns, ...argv] : argv;
  const child = spawn(command as string, args, { stdio: ["ignore", "ignore", "pipe", "ipc"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise<ResolverSockets>((resolve, reject) => {
    const got: Partial<ResolverSockets> = {};
    let error: string | undefined;
    child.on("message", (msg: { socket?: "udp" | "tcp"; error?: string }, handle: unknown) => {
      if (msg.error !== undefined) error = msg.error;
      else if (msg.socket === "udp") got.udp = handle as DgramSocket;
      else if (msg.socket === "tcp") got.tcp = handle as Server;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (got.udp && got.tcp) return resolve({ udp: got.udp, tcp: got.tcp });
      got.udp?.close();
      got.tcp?.close();
      const where = o.netns ? ` in network namespace ${o.netns}` : "";
      reject(
        new Error(
          `cannot open the DNS resolver's sockets on [${o.address}]:${o.port}${where}: ${error ?? (stderr.trim() || `opener exited with ${code}`)}`,
        ),
      );
    });
  });
}
