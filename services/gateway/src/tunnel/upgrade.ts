import type { IncomingMessage, Server } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { adoptForRelay, pipeBothWays, TUNNEL_PROTOCOL } from "@hangar/config";

/**
 * What an upgrade request's handler gets (as the `upgrade` binding): `accept` hands over the other end
 * of the tunnel, which the client's connection is piped to once 101 Switching Protocols is sent.
 */
export interface TunnelUpgrade {
  accept(upstream: Socket): Response;
}

/** Headers of a response written by hand: the connection closes after it, so these are set here. */
const HOP_HEADERS = new Set(["connection", "content-length", "transfer-encoding", "keep-alive"]);

/**
 * Serves `Connection: Upgrade` requests through the same API (middlewares, auth, error bodies): a
 * handler that accepts gets the client's socket after a 101; any other answer is written as a
 * plain response and the connection closed. `closeAll` ends every upgraded connection, which the
 * server's close would otherwise wait for (an idle console can last for hours).
 */
export function serveUpgrades(
  server: Pick<Server, "on">,
  app: { fetch: (request: Request, env: { upgrade: TunnelUpgrade }) => Response | Promise<Response> },
): { closeAll(): void } {
  const open = new Set<Socket>();
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    socket.on("error", () => socket.destroy());
    void upgradeOne(app, req, socket, head).catch(() => socket.destroy());
  });
  return {
    closeAll: () => {
      for (const socket of open) socket.destroy();
    },
  };
}

async function upgradeOne(
  app: Parameters<typeof serveUpgrades>[1],
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value])
      headers.append(name, v);
  }
  const abort = new AbortController();
  socket.once("close", () => abort.abort());
  const request = new Request(new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`), {
    method: req.method ?? "GET",
    headers,
    signal: abort.signal,
  });
  let upstream: Socket | undefined;
  const res = await app.fetch(request, {
    upgrade: {
      accept(s) {
        upstream = s;
        return new Response(null, { status: 200 });
      },
    },
  });
  if (upstream) {
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    // The client's reads go into a reused buffer from here on, as the machine's side does (adoptForRelay).
    const client = adoptForRelay(socket);
    client.setNoDelay(true);
    client.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\n\r\n`,
    );
    if (head.length > 0) upstream.write(head);
    pipeBothWays(client, upstream);
    return;
  }
  const body = Buffer.from(await res.arrayBuffer());
  let text = `HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? ""}\r\n`;
  res.headers.forEach((value, name) => {
    if (!HOP_HEADERS.has(name)) text += `${name}: ${value}\r\n`;
  });
  text += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(text), body]));
}
