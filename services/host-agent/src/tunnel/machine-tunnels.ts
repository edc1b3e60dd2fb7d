import { once } from "node:events";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { ExecFrameKind, encodeExecEnd, encodeExecFrame } from "@hangar/config";
import type { CrunExecProcess } from "@hangar/oci";
import {
  CommandError,
  type ExecTarget,
  type HostTunnelReply,
  type HostTunnelRequest,
  serveCommands,
  subjects,
} from "@hangar/service";
import type { Logger } from "@hangar/telemetry";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { InvalidMachineSpecError, MachineNotRunningError, type RunningMachine } from "../driver/mod.js";
import { TICKET_TTL_MS, TicketBook, type TicketGrant } from "./tickets.js";

/** The longest first line a connection may send: a ticket is 43 characters. */
const MAX_TICKET_LINE = 128;
/** The largest terminal a console may ask for. */
const MAX_TERMINAL = 1000;

/** What tunnels need from the driver: the running machines, and a streaming exec inside one. */
export interface TunnelDriver {
  running(): RunningMachine[];
  execStream(
    machineId: string,
    req: { command: string[]; tty?: { cols: number; rows: number } },
  ): Promise<CrunExecProcess>;
}

export interface MachineTunnelsOptions {
  nc: NatsConnection;
  hostId: string;
  /** The address the listener binds, and the one the gateway is told to connect to. */
  address: string;
  /** HANGAR_HOST_AGENT_TUNNEL_PORT; 0 picks a free port. */
  port: number;
  driver: TunnelDriver;
  /** The app of a machine on this host, as the MACHINES stream says; undefined when it is not here. */
  appOf: (machineId: string) => string | undefined;
  logger: Pick<Logger, "error" | "debug">;
}

/**
 * Console tunnels into this host's machines (`hangar ssh console`): the gateway asks on
 * `cmd.host.<id>.tunnel` for a one-time ticket, then connects to the tunnel listener and sends it as
 * its first line; the command runs inside the machine's sandbox, its output framed. (Port tunnels,
 * `hangar proxy`, need no sandbox: the gateway connects to the machine's private address itself.)
 */
export class MachineTunnels {
  private readonly tickets = new TicketBook();
  private readonly connections = new Set<Socket>();
  private sub: Subscription | undefined;

  private constructor(
    private readonly opts: MachineTunnelsOptions,
    private readonly server: Server,
    /** The port the listener is bound to. */
    readonly port: number,
  ) {}

  /** Opens the listener and answers `cmd.host.<id>.tunnel`. */
  static async open(opts: MachineTunnelsOptions): Promise<MachineTunnels> {
    // Half-open: a client's end of input (stdin closed) must not cut the output still coming back.
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    server.listen(opts.port, opts.address);
    await once(server, "listening");
    const tunnels = new MachineTunnels(opts, server, (server.address() as AddressInfo).port);
    server.on("connection", (socket) => tunnels.accept(socket));
    tunnels.sub = serveCommands<HostTunnelRequest, HostTunnelReply>(
      opts.nc,
      subjects.hostCommand(opts.hostId, "tunnel"),
      `host-${opts.hostId}`,
      async (req) => ({ address: opts.address, port: tunnels.port, ticket: tunnels.issue(req) }),
      (err) => opts.logger.error({ err }, "answering tunnel failed"),
    );
    return tunnels;
  }

  /** A ticket for a checked request: a running machine of the app, and a valid target. */
  private issue(req: HostTunnelRequest): string {
    if (typeof req.app !== "string" || typeof req.machine_id !== "string")
      throw new CommandError("expected { app, machine_id, target }", "invalid_argument");
    if (this.opts.appOf(req.machine_id) !== req.app)
      throw new CommandError(`machine ${req.machine_id} not found in app ${req.app}`, "not_found");
    if (!this.opts.driver.running().some((m) => m.machineId === req.machine_id))
      throw new CommandError(`machine ${req.machine_id} is not running on its host`, "failed_precondition");
    return this.tickets.issue({ machineId: req.machine_id, target: checkedTarget(req.target) });
  }

  /** Reads the ticket line, then serves what it grants; anything else closes the connection. */
  private accept(socket: Socket): void {
    this.connections.add(socket);
    socket.once("close", () => this.connections.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setTimeout(TICKET_TTL_MS, () => socket.destroy());
    let line = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      line = Buffer.concat([line, chunk]);
      const end = line.indexOf(0x0a);
      if (end < 0) {
        if (line.length > MAX_TICKET_LINE) socket.destroy();
        return;
      }
      socket.off("data", onData);
      socket.pause();
      socket.setTimeout(0);
      const rest = line.subarray(end + 1);
      if (rest.length > 0) socket.unshift(rest);
      const grant = this.tickets.redeem(line.subarray(0, end).toString());
      if (!grant) {
        socket.destroy();
        return;
      }
      void this.serve(socket, grant).catch((err: unknown) => {
        this.opts.logger.error({ err, machine: grant.machineId }, "tunnel failed");
        socket.destroy();
      });
    };
    socket.on("data", onData);
  }

  private async serve(socket: Socket, { machineId, target }: TicketGrant): Promise<void> {
    let exec: CrunExecProcess;
    try {
      exec = await this.opts.driver.execStream(machineId, {
        command: target.command,
        ...(target.tty ? { tty: { cols: target.cols, rows: target.rows } } : {}),
      });
    } catch (err) {
      if (!(err instanceof MachineNotRunningError || err instanceof InvalidMachineSpecError)) throw err;
      socket.end(encodeExecEnd({ error: err.message }));
      return;
    }
    streamExec(socket, exec, target.tty);
  }

  /** Stops answering, closes the listener and every open tunnel. */
  async close(): Promise<void> {
    this.sub?.unsubscribe();
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The target of a request, checked: a non-empty argv with a sane terminal size. */
function checkedTarget(target: ExecTarget | undefined): ExecTarget {
  const refuse = (what: string) => new CommandError(`target: ${what}`, "invalid_argument");
  if (target?.kind === "exec") {
    const { command, tty, cols, rows } = target;
    if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === "string"))
      throw refuse("command: expected a non-empty list of strings");
    for (const [name, n] of [
      ["cols", cols],
      ["rows", rows],
    ] as const)
      if (!Number.isInteger(n) || n < 1 || n > MAX_TERMINAL)
        throw refuse(`${name}: expected a whole number from 1 to ${MAX_TERMINAL}`);
    return { kind: "exec", command, tty: tty === true, cols, rows };
  }
  throw refuse('expected { kind: "exec", command, tty, cols, rows }');
}

/** Relays a client's stdin to the command, and its output back in frames, ending with its exit status. */
function streamExec(socket: Socket, exec: CrunExecProcess, tty: boolean): void {
  const { child } = exec;
  socket.once("close", () => void exec.kill());
  const { stdin } = child;
  if (stdin) {
    // A command that exits without reading its input makes writes fail with EPIPE: nothing to do.
    stdin.on("error", () => undefined);
    // On a terminal, the end of input is a key (Ctrl-D), as the user's own terminal would send it:
    // closing script's input instead makes it send the terminal a byte of its own choosing.
    socket.pipe(stdin, { end: !tty });
    if (tty) socket.once("end", () => stdin.write("\x04"));
  }
  socket.resume();
  const relay = (stream: Readable, kind: ExecFrameKind) =>
    stream.on("data", (chunk: Buffer) => {
      if (!socket.write(encodeExecFrame(kind, chunk))) {
        stream.pause();
        socket.once("drain", () => stream.resume());
      }
    });
  relay(child.stdout, ExecFrameKind.stdout);
  relay(child.stderr, ExecFrameKind.stderr);
  exec.exited.then(
    (code) => socket.end(encodeExecEnd({ exit_code: code, exit_signal: 0 })),
    (err: unknown) => socket.end(encodeExecEnd({ error: `exec failed: ${(err as Error).message}` })),
  );
}
