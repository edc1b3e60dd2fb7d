import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adoptForRelay, connectForRelay, pipeBothWays, RELAY_READ_BYTES, upgradeForRelay } from "./tunnel.js";

// A relay as the gateway's port tunnels make one: a client connects to a listener, whose accepted
// socket is piped to a connectForRelay connection to a far server. Real sockets on loopback.

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((done) => s.close(done));
});

/** A half-open server on 127.0.0.1 (closed after each test), and its port. */
async function serve(
  onConnection: (s: Socket) => void,
  options: { pauseOnConnect?: boolean } = {},
): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true, ...options }, onConnection);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as AddressInfo).port };
}

async function listen(onConnection: (s: Socket) => void): Promise<number> {
  return (await serve(onConnection)).port;
}

/** Writes `payload` in 256 KiB pieces and resolves to as many bytes read back, both ways at once. */
async function echoed(client: Socket, payload: Buffer): Promise<Buffer> {
  const back = new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    client.on("data", (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= payload.length) resolve(Buffer.concat(chunks));
    });
  });
  for (let i = 0; i < payload.length; i += 256 * 1024) {
    if (!client.write(payload.subarray(i, i + 256 * 1024))) await once(client, "drain");
  }
  return back;
}

/** A listener that relays each connection to 127.0.0.1:farPort, the far side through connectForRelay. */
async function relayTo(farPort: number): Promise<number> {
  return listen((near) => {
    const far = connectForRelay({ host: "127.0.0.1", port: farPort, allowHalfOpen: true });
    pipeBothWays(near, far);
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Everything `socket` sends until its end, read slowly: a pause every chunk, so writes into it queue up. */
function readSlowly(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => {
    chunks.push(c);
    socket.pause();
    setTimeout(() => socket.resume(), 1);
  });
  return once(socket, "end").then(() => Buffer.concat(chunks));
}

describe("connectForRelay with pipeBothWays", () => {
  it("passes every byte from the far side in order while the near side reads slowly (the reused buffer waits for its write)", async () => {
    // Far server: sends 8 MiB of random bytes (many times the read buffer) and ends.
    const payload = randomBytes(8 * 1024 * 1024);
    expect(payload.length).toBeGreaterThan(RELAY_READ_BYTES * 16);
    const far = await listen((s) => s.end(payload));
    const client = connect({ host: "127.0.0.1", port: await relayTo(far), allowHalfOpen: true });
    const got = await readSlowly(client);
    expect(got.length).toBe(payload.length);
    expect(sha(got)).toBe(sha(payload));
    client.destroy();
  });

  it("echoes 16 MiB both ways at once, byte for byte", async () => {
    const far = await listen((s) => s.pipe(s));
    const client = connect({ host: "127.0.0.1", port: await relayTo(far), allowHalfOpen: true });
    await once(client, "connect");
    const payload = randomBytes(16 * 1024 * 1024);
    expect(sha(await echoed(client, payload))).toBe(sha(payload));
    client.destroy();
  });

  it("delivers what the far side sends before the relay is set up first, and passes each side's half-close on", async () => {
    // The far server greets at once (as SSH or SMTP do), then answers what it gets, upper-cased,
    // until the client's end, and then ends itself.
    const far = await listen((s) => {
      s.write("hello\n");
      const got: Buffer[] = [];
      s.on("data", (c: Buffer) => got.push(c));
      s.on("end", () => s.end(Buffer.concat(got).toString().toUpperCase()));
    });
    // The relay is set up only after the greeting has surely arrived at the far connection.
    const port = await listen((near) => {
      const upstream = connectForRelay({ host: "127.0.0.1", port: far, allowHalfOpen: true });
      upstream.once("connect", () => setTimeout(() => pipeBothWays(near, upstream), 100));
    });
    const client = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const all = new Promise<string>((resolve) => {
      let text = "";
      client.on("data", (c: Buffer) => {
        text += c.toString();
      });
      client.on("end", () => resolve(text));
    });
    await once(client, "connect");
    client.end("quiet please");
    expect(await all).toBe("hello\nQUIET PLEASE");
    client.destroy();
  });
});

describe("upgradeForRelay", () => {
  const REQUEST = "GET /v1/t HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: hangar-tunnel\r\n\r\n";

  /** A server that reads the request head, answers `answer`, then (after a 101) echoes. */
  async function upgrader(
    answer: (head: string) => string | Buffer,
  ): Promise<{ port: number; heads: string[] }> {
    const heads: string[] = [];
    const port = await listen((s) => {
      let got = Buffer.alloc(0);
      const onData = (c: Buffer) => {
        got = Buffer.concat([got, c]);
        const end = got.indexOf("\r\n\r\n");
        if (end < 0) return;
        s.removeListener("data", onData);
        const head = got.subarray(0, end).toString();
        heads.push(head);
        s.write(answer(head));
        const rest = got.subarray(end + 4);
        if (rest.length > 0) s.write(rest);
        s.pipe(s);
      };
      s.on("data", onData);
    });
    return { port, heads };
  }

  it("relays through the reused buffer after a 101, bytes that came with the head first", async () => {
    const { port, heads } = await upgrader(() =>
      Buffer.concat([
        Buffer.from(
          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: hangar-tunnel\r\n\r\n",
        ),
        Buffer.from("greeting:"),
      ]),
    );
    const answer = await upgradeForRelay({ host: "127.0.0.1", port, allowHalfOpen: true }, REQUEST, 5_000);
    expect(heads).toEqual([REQUEST.slice(0, -4)]);
    if (!("socket" in answer)) throw new Error(`expected the socket, got ${JSON.stringify(answer)}`);
    // The tunnel's other end: a local listener's connection, piped to the upgraded socket.
    const near = await listen((s) => pipeBothWays(s, answer.socket));
    const client = connect({ host: "127.0.0.1", port: near, allowHalfOpen: true });
    const payload = randomBytes(4 * 1024 * 1024);
    const got = readSlowly(client);
    client.end(payload);
    const all = await got;
    expect(all.subarray(0, 9).toString()).toBe("greeting:");
    expect(sha(all.subarray(9))).toBe(sha(payload));
  });

  it("answers the status alone for anything but 101, and rejects a non-HTTP answer or none", async () => {
    const refused = await upgrader(
      () =>
        'HTTP/1.1 401 Unauthorized\r\nContent-Length: 45\r\n\r\n{"error":"unauthenticated","status":"denied"}',
    );
    expect(await upgradeForRelay({ host: "127.0.0.1", port: refused.port }, REQUEST, 5_000)).toEqual({
      status: 401,
    });
    const junk = await upgrader(() => "SSH-2.0-OpenSSH\r\n\r\n");
    await expect(upgradeForRelay({ host: "127.0.0.1", port: junk.port }, REQUEST, 5_000)).rejects.toThrow(
      /not HTTP\/1.1/,
    );
    // Says nothing; lets go once the client gives up (it is half-open, as the relays' listeners are).
    const silent = await listen((s) => s.on("end", () => s.destroy()).resume());
    await expect(upgradeForRelay({ host: "127.0.0.1", port: silent }, REQUEST, 300)).rejects.toThrow(
      /timed out/,
    );
    const closing = await listen((s) => s.destroy());
    await expect(upgradeForRelay({ host: "127.0.0.1", port: closing }, REQUEST, 5_000)).rejects.toThrow(
      /closed before the server answered/,
    );
    // Half-open, as the CLI opens it: the server's end alone, mid-head, is seen at once, not at the timeout.
    const ending = await listen((s) => s.end("HTTP/1.1 101 Swi").resume());
    await expect(
      upgradeForRelay({ host: "127.0.0.1", port: ending, allowHalfOpen: true }, REQUEST, 30_000),
    ).rejects.toThrow(/closed before the server answered/);
  });
});

describe("adoptForRelay", () => {
  it("relays a net server's accepted connection through a reused buffer, and ends with it for the server", async () => {
    const far = await listen((s) => s.pipe(s));
    const adopted: Socket[] = [];
    const accepted: Socket[] = [];
    const { server, port } = await serve(
      (s) => {
        accepted.push(s);
        const near = adoptForRelay(s);
        adopted.push(near);
        near.on("data", () => {
          throw new Error("an adopted socket's bytes must not reach 'data'");
        });
        pipeBothWays(near, connectForRelay({ host: "127.0.0.1", port: far, allowHalfOpen: true }));
      },
      { pauseOnConnect: true },
    );
    const client = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    await once(client, "connect");
    const payload = randomBytes(16 * 1024 * 1024);
    expect(sha(await echoed(client, payload))).toBe(sha(payload));
    expect(adopted[0]).not.toBe(accepted[0]);
    // The server counts the accepted socket: it closes once the relay has, and then the server can.
    const closed = once(accepted[0] as Socket, "close");
    client.destroy();
    await closed;
    await new Promise<void>((done, fail) => server.close((err) => (err ? fail(err) : done())));
  });

  it("takes over an HTTP upgrade with the bytes the client sent before its answer, and a server's destroy of the accepted socket ends the relay", async () => {
    const far = await listen((s) => s.pipe(s));
    const accepted: Socket[] = [];
    const server = createHttpServer();
    server.on("upgrade", (_req, socket: Socket, head: Buffer) => {
      accepted.push(socket);
      // Answered later, as the gateway answers after its checks: once the client's next bytes have
      // been read into the accepted socket's stream meanwhile.
      const ready = setInterval(() => {
        if (socket.readableLength < "two,".length) return;
        clearInterval(ready);
        const upstream = connectForRelay({ host: "127.0.0.1", port: far, allowHalfOpen: true });
        upstream.once("connect", () => {
          const client = adoptForRelay(socket);
          expect(client).not.toBe(socket);
          client.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: t\r\n\r\n");
          if (head.length > 0) upstream.write(head);
          pipeBothWays(client, upstream);
        });
      }, 5);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const client = connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port });
    await once(client, "connect");
    const text: string[] = [];
    client.on("data", (c: Buffer) => text.push(c.toString()));
    // The head and a first piece in one write (the server's `head`), a second before any answer.
    client.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: t\r\n\r\none,");
    await new Promise((r) => setTimeout(r, 30));
    client.write("two,");
    expect(text).toEqual([]);
    await vi.waitFor(() => expect(text.join("")).toContain("one,two,"), { timeout: 5_000 });
    client.write("three");
    await vi.waitFor(() => expect(text.join("")).toMatch(/\r\n\r\none,two,three$/), { timeout: 5_000 });
    expect(text.join("")).toMatch(/^HTTP\/1.1 101 /);
    // What a server's closeAll does: the relay's connection to the client ends with it.
    const ended = once(client, "close");
    (accepted[0] as Socket).destroy();
    await ended;
    await new Promise<void>((done, fail) => server.close((err) => (err ? fail(err) : done())));
  });

  it("ends the client's connection when the far side was reset before the relay began, and a write to the old socket does not crash", async () => {
    const far = await listen((s) => s.resetAndDestroy());
    const accepted: Socket[] = [];
    const port = await listen((s) => {
      accepted.push(s);
      const near = adoptForRelay(s);
      const upstream = connectForRelay({ host: "127.0.0.1", port: far, allowHalfOpen: true });
      upstream.on("error", () => upstream.destroy());
      // The relay begins only once the far side's reset has destroyed the upstream.
      upstream.once("close", () => pipeBothWays(near, upstream));
    });
    const client = connect({ host: "127.0.0.1", port });
    client.on("error", () => undefined);
    client.resume();
    await once(client, "close");
    // The accepted socket lost its handle to the adopted one: writing to it fails, quietly (an
    // error with no listener would reach vitest as an unhandled error, failing the run).
    (accepted[0] as Socket).write("late");
    await new Promise((r) => setTimeout(r, 20));
  });

  it("leaves a socket whose end was already read as it is, to be piped", async () => {
    const port = await listen((s) => {
      s.once("end", () => {
        const same = adoptForRelay(s);
        s.end(same === s ? "kept" : "adopted");
      });
      s.resume();
    });
    const client = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    client.end();
    const answer = new Promise<string>((resolve) => {
      let t = "";
      client.on("data", (c: Buffer) => {
        t += c.toString();
      });
      client.on("end", () => resolve(t));
    });
    expect(await answer).toBe("kept");
    client.destroy();
  });
});
