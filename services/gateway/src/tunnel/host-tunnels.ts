import { once } from "node:events";
import { connect, type Socket } from "node:net";
import {
  type HostTunnelReply,
  type HostTunnelRequest,
  sendCommand,
  subjects,
  type TunnelTarget,
} from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import { startedHostOf } from "../exec/inspector.js";
import { ApiError } from "../http/errors.js";
import type { Catalog } from "../machines/catalog.js";

/** How long a host gets to issue a ticket, and the gateway to connect to its tunnel listener. */
const TUNNEL_OPEN_TIMEOUT_MS = 5_000;

/** What the tunnel routes need: a connection into a machine, ready for the client's bytes. */
export interface TunnelOpener {
  /** The machine given, or any started machine of the app; then its host's tunnel, ticket sent. */
  open(app: string, machineId: string | undefined, target: TunnelTarget): Promise<Socket>;
}

/**
 * Tunnels through the machine's host agent: `cmd.host.<host>.tunnel` issues a one-time ticket for the
 * machine and target, and the agent's tunnel listener takes it as the connection's first line.
 */
export class HostTunnels implements TunnelOpener {
  constructor(
    private readonly nc: NatsConnection,
    private readonly catalog: Pick<Catalog, "machine" | "machinesOf" | "app">,
  ) {}

  async open(app: string, machineId: string | undefined, target: TunnelTarget): Promise<Socket> {
    const id = machineId ?? this.anyStarted(app);
    const hostId = startedHostOf(this.catalog, app, id, "tunnels need");
    const { address, port, ticket } = await sendCommand<HostTunnelRequest, HostTunnelReply>(
      this.nc,
      subjects.hostCommand(hostId, "tunnel"),
      { app, machine_id: id, target },
      TUNNEL_OPEN_TIMEOUT_MS,
    );
    const socket = connect({ host: address, port, allowHalfOpen: true, noDelay: true });
    socket.setTimeout(TUNNEL_OPEN_TIMEOUT_MS, () =>
      socket.destroy(new Error(`timed out connecting to ${address}:${port}`)),
    );
    try {
      await once(socket, "connect");
    } catch (err) {
      throw ApiError.of(
        "unavailable",
        `cannot reach host ${hostId}'s tunnel listener: ${(err as Error).message}`,
      );
    }
    socket.setTimeout(0);
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
