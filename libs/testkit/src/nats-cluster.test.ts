import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { startNatsCluster } from "./mod.js";

describe("startNatsCluster", () => {
  it("starts three JetStream nodes with a meta leader", { timeout: 120_000 }, async () => {
    const cluster = await startNatsCluster();
    try {
      expect(cluster.servers).toHaveLength(3);
      expect(new Set(cluster.urls).size).toBe(3);
      expect(cluster.urls).toEqual(cluster.servers.map((server) => server.url));

      // Only a meta leader can place a replicated stream, so this succeeding is the proof.
      const [first, ...others] = cluster.servers.map((server) => server.port);
      const created = await jsRequest(first ?? 0, "$JS.API.STREAM.CREATE.EVENTS", {
        name: "EVENTS",
        subjects: ["events.>"],
        num_replicas: 3,
      });
      expect(created).toMatchObject({ config: { num_replicas: 3 }, cluster: { name: "hangar" } });
      for (const port of others) {
        const info = await jsRequest(port, "$JS.API.STREAM.INFO.EVENTS", "");
        expect(info).toMatchObject({ config: { name: "EVENTS" }, cluster: { replicas: expect.any(Array) } });
      }
    } finally {
      await cluster.stop();
    }
    for (const server of cluster.servers) expect(isAlive(server.pid)).toBe(false);
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
