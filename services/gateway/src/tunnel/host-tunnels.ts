import { once } from "node:events";
import type { Socket } from "node:net";
import { connectForRelay } from "@hangar/config";
import {
  type ExecTarget,
  type HostTunnelReply,
  type HostTunnelRequest,
  sendCommand,
  subjects,
  type TunnelTarget,
} from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import { startedMachineOf } from "../exec/inspector.js";
import { ApiError } from "../http/errors.js";
import type { Catalog } from "../machines/catalog.js";

/**
 * How long a host gets to issue a ticket, and the gateway to connect to its tunnel listener or to a
 * machine's port.
 */
const TUNNEL_OPEN_TIMEOUT_MS = 5_000;

/**
 * What the tunnel routes need: a connection into a machine, ready for the client's bytes. Its reads
 * go to the client only through @hangar/config's `pipeBothWays` (it reads into a reused buffer,
 * `connectForRelay`, and emits no `data`).
 */
export interface TunnelOpener {
  /** The machine given, or any started machine of the app; then a connection to the target in it. */
  open(app: string, machineId: string | undefined, target: TunnelTarget): Promise<Socket>;
}

/**
 * Tunnels into machines. A port tunnel connects straight to the machine's private address (its
 * host-local IPv4, as the edge proxy does for every request): the gateway is a data-plane door like
 * the proxy, and bytes cross no other relay. A console tunnel needs the machine's sandbox, so it goes
 * through the machine's host agent: `cmd.host.<host>.tunnel` issues a one-time ticket for the machine
 * and command, and the agent's tunnel listener takes it as the connection's first line.
 */
export class HostTunnels implements TunnelOpener {
  constructor(
    private readonly nc: NatsConnection,
    private readonly catalog: Pick<Catalog, "machine" | "machinesOf" | "app">,
  ) {}

  async open(app: string, machineId: string | undefined, target: TunnelTarget): Promise<Socket> {
    const id = machineId ?? this.anyStarted(app);
    const machine = startedMachineOf(this.catalog, app, id, "tunnels need");
    if (target.kind === "port")
      return connectTo(machine.privateIp, target.port, `port ${target.port} of machine ${id}`);
    return this.console(app, id, machine.hostId, target);
  }

  private async console(app: string, id: string, hostId: string, target: ExecTarget): Promise<Socket> {
    const { address, port, ticket } = await sendCommand<HostTunnelRequest, HostTunnelReply>(
      this.nc,
      subjects.hostCommand(hostId, "tunnel"),
      { app, machine_id: id, target },
      TUNNEL_OPEN_TIMEOUT_MS,
    );
    const socket = await connectTo(address, port, `host ${hostId}'s tunnel listener`);
    socket.write(`${ticket}\n`);
    return socket;
  }

  /** A started machine of the app, as Fly picks one for `fly proxy`: any; 404 for an unknown app, 412 for none. */
  private anyStarted(app: string): string {
    if (!this.catalog.app(app)) throw ApiError.of("not_found", `app ${app} not found`);
    const started = this.catalog.machinesOf(app).filter((m) => m.state.status === "started");
    const picked = started[Math.floor(Math.random() * started.length)];
    if (!picked)
      throw ApiError.of("failed_precondition", `app ${app} has no started machine: start one first`);
    return picked.state.machineId;
  }
}

/** A connected socket to `address:port` (half-open allowed, no Nagle); 503 naming `what` when it fails. */
async function connectTo(address: string, port: number, what: string): Promise<Socket> {
  const socket = connectForRelay({ host: address, port, allowHalfOpen: true, noDelay: true });
  socket.setTimeout(TUNNEL_OPEN_TIMEOUT_MS, () =>
    socket.destroy(new Error(`timed out connecting to ${address}:${port}`)),
  );
  try {
    await once(socket, "connect");
  } catch (err) {
    throw ApiError.of("unavailable", `cannot reach ${what}: ${(err as Error).message}`);
  }
  socket.setTimeout(0);
  // Until the relay takes it (pipeBothWays), an error (the far side resets) only destroys it.
  socket.on("error", () => socket.destroy());
  return socket;
}
