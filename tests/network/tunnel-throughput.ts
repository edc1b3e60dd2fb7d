// Bytes per second through a TCP echo server (tests/network/programs/server.mjs, ECHO_PORT): the
// `hangar proxy` tunnel against a direct connection to the same machine (acceptance 5's
// tunnel_mb_s and direct_mb_s). `pnpm bench network` and the reaching-in test measure with it.
import { once } from "node:events";
import { connect, type Socket } from "node:net";

/** What one measurement sends (and reads back): enough for the pipes to reach their steady rate. */
export const THROUGHPUT_BYTES = 64 * 1024 * 1024;

/** A connected TCP socket to `host:port`. */
export async function tcpConnect(host: string, port: number): Promise<Socket> {
  const socket = connect({ host, port, noDelay: true });
  await once(socket, "connect");
  return socket;
}

/**
 * MB/s (10^6 bytes) of `bytes` written to an echo server and read back on one connection, both ways
 * at once, from the first byte written to the last byte read; checks that every byte came back.
 */
export async function echoThroughput(socket: Socket, bytes = THROUGHPUT_BYTES): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  const started = process.hrtime.bigint();
  const received = new Promise<void>((resolve, reject) => {
    let got = 0;
    socket.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= bytes) resolve();
    });
    socket.once("error", reject);
    socket.once("close", () =>
      got >= bytes ? resolve() : reject(new Error(`echo closed after ${got} of ${bytes} bytes`)),
    );
  });
  let sent = 0;
  while (sent < bytes) {
    const piece = bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent);
    sent += piece.length;
    if (!socket.write(piece)) await once(socket, "drain");
  }
  await received;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  socket.destroy();
  return bytes / 1e6 / seconds;
}
