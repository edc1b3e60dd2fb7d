import { connect, createServer, type Server, type Socket } from "node:net";
import type { Member } from "./logic.js";
import { log } from "./server.js";

/** How long a forwarded connection waits for the primary to accept it. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The member's router: each TCP connection to it is forwarded to the current primary's postgres
 * (its address, the members' postgres port). With no primary known the connection is closed at once
 * (the client retries); when the primary changes, connections to the old one are closed.
 */
export class Router {
  private target: Member | undefined;
  private readonly open = new Set<Socket>();
  private readonly server: Server;

  constructor(private readonly pgPort: number) {
    this.server = createServer((client) => this.forward(client));
  }

  /** Listens on `host`:`port`. */
  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host, port, ipv6Only: false }, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  /** The member new connections go to (undefined: none); a change closes the connections to the old one. */
  setTarget(target: Member | undefined): void {
    const same = target?.id === this.target?.id && target?.address === this.target?.address;
    if (same) return;
    log("router target changed", { from: this.target?.id ?? null, to: target?.id ?? null });
    this.target = target;
    for (const socket of this.open) socket.destroy();
    this.open.clear();
  }

  private forward(client: Socket): void {
    const target = this.target;
    if (target === undefined) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: target.address, port: this.pgPort });
    // A primary whose machine is gone answers nothing: the client is cut off instead of hanging.
    upstream.setTimeout(CONNECT_TIMEOUT_MS, () => upstream.destroy());
    upstream.once("connect", () => upstream.setTimeout(0));
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.open.add(client);
    this.open.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.open.delete(client);
      this.open.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Stops listening and closes every forwarded connection. */
  async close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
