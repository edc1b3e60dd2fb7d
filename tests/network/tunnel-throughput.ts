// Bytes per second through a TCP echo server (tests/network/programs/server.mjs, ECHO_PORT): the
// `hangar proxy` tunnel against a direct connection to the same machine (acceptance 5's
// tunnel_mb_s and direct_mb_s). `pnpm bench network` and the reaching-in test measure with it.
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { type CliResult, startHangar } from "../../cli/test/run-cli.js";

/** What one measurement sends (and reads back): enough for the pipes to reach their steady rate. */
export const THROUGHPUT_BYTES = 64 * 1024 * 1024;

/** A `hangar proxy` running in the background: the local port it listens on, and how to stop it. */
export interface RunningProxy {
  port: number;
  /** Ctrl-C (SIGINT), then its exit. */
  stop(): Promise<CliResult>;
}

/**
 * Starts `hangar proxy 0:<remote> -a <app> [args]` against the API and resolves once it prints the
 * local port it listens on; rejects with its output if it exits first.
 */
export async function startHangarProxy(o: {
  apiUrl: string;
  token: string;
  app: string;
  remotePort: number;
  args?: string[];
}): Promise<RunningProxy> {
  const proxy = startHangar(["proxy", `0:${o.remotePort}`, "-a", o.app, ...(o.args ?? [])], {
    env: { HANGAR_API_URL: o.apiUrl, HANGAR_API_TOKEN: o.token },
    timeoutMs: 600_000,
  });
  const port = await new Promise<number>((resolve, reject) => {
    const listening = () => {
      const m = /Proxying local port (\d+) to remote/.exec(proxy.output().stdout);
      if (m) resolve(Number(m[1]));
    };
    proxy.child.stdout.on("data", listening);
    void proxy.exited.then((r) => reject(new Error(`hangar proxy exited ${r.code}: ${r.stderr}`)));
  });
  return {
    port,
    stop: () => {
      proxy.child.kill("SIGINT");
      return proxy.exited;
    },
  };
}

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
