import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ServerStartError, startNatsServer } from "./mod.js";

describe("startNatsServer", () => {
  it("serves NATS with JetStream on the port it reports", async () => {
    const server = await startNatsServer();
    try {
      expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
      const info = await readInfo(server.port);
      expect(info).toMatchObject({ port: server.port, jetstream: true });
    } finally {
      await server.stop();
    }
  });

  it("keeps its port and store dir across kill -9 and restart", async () => {
    const server = await startNatsServer();
    try {
      const created = await jsRequest(server.port, "$JS.API.STREAM.CREATE.ORDERS", {
        name: "ORDERS",
        subjects: ["orders.>"],
        storage: "file",
      });
      expect(created).toMatchObject({ config: { name: "ORDERS" } });
      const { port, storeDir, pid } = server;

      await server.kill();
      expect(isAlive(pid)).toBe(false);
      expect(await server.exited()).toBe("killed by SIGKILL");
      await expect(readInfo(port)).rejects.toThrow(/ECONNREFUSED/);

      await server.restart();
      expect(server.port).toBe(port);
      expect(server.storeDir).toBe(storeDir);
      expect(server.pid).not.toBe(pid);
      expect(isAlive(server.pid)).toBe(true);
      const info = await jsRequest(port, "$JS.API.STREAM.INFO.ORDERS", "");
      expect(info).toMatchObject({ config: { name: "ORDERS", subjects: ["orders.>"] } });
    } finally {
      await server.stop();
    }
  });

  it("stops idempotently and removes the dirs it created", async () => {
    const server = await startNatsServer();
    await server.stop();
    await server.stop();
    expect(isAlive(server.pid)).toBe(false);
    expect(existsSync(dirname(server.storeDir))).toBe(false);
  });

  it("leaves a store dir it was given in place", async () => {
    const storeDir = await mkdtemp(join(tmpdir(), "hangar-testkit-store-"));
    try {
      const server = await startNatsServer({ storeDir });
      expect(server.storeDir).toBe(storeDir);
      await server.stop();
      expect(existsSync(join(storeDir, "jetstream"))).toBe(true);
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  });

  it("runs without JetStream when asked", async () => {
    const server = await startNatsServer({ jetstream: false, name: "plain" });
    try {
      const info = await readInfo(server.port);
      expect(info.jetstream).toBeUndefined();
      expect(info.server_name).toBe("plain");
    } finally {
      await server.stop();
    }
  });

  it("rejects with the server's own complaint when it cannot start", async () => {
    const start = startNatsServer({ extraConfig: "no_such_option: true" });
    await expect(start).rejects.toBeInstanceOf(ServerStartError);
    await expect(start).rejects.toThrow(/exited \(exit code 1\)[\s\S]*no_such_option/);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The JSON of the INFO line every NATS server greets a new connection with. */
async function readInfo(port: number): Promise<Record<string, unknown>> {
  const socket = connect(port, "127.0.0.1");
  try {
    const [chunk] = await once(socket, "data");
    const line = String(chunk).split("\r\n", 1)[0] ?? "";
    expect(line).toMatch(/^INFO /);
    return JSON.parse(line.slice("INFO ".length));
  } finally {
    socket.destroy();
  }
}

/** One JetStream API request over the bare NATS protocol; enough to prove JetStream state without a client. */
async function jsRequest(port: number, subject: string, body: unknown): Promise<unknown> {
  const socket = connect(port, "127.0.0.1");
  try {
    const payload = typeof body === "string" ? body : JSON.stringify(body);
    socket.write(
      `CONNECT {"verbose":false}\r\nSUB _INBOX.reply 1\r\n` +
        `PUB ${subject} _INBOX.reply ${Buffer.byteLength(payload)}\r\n${payload}\r\n`,
    );
    let received = "";
    for await (const chunk of socket) {
      received += String(chunk);
      expect(received).not.toMatch(/^-ERR/m);
      const header = /^MSG _INBOX\.reply 1 (\d+)\r\n/m.exec(received);
      if (header === null) continue;
      const start = header.index + header[0].length;
      const end = start + Number(header[1]);
      if (received.length >= end) return JSON.parse(received.slice(start, end));
    }
    throw new Error(`connection closed before a reply to ${subject}: ${received}`);
  } finally {
    socket.destroy();
  }
}
