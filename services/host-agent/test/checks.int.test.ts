import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { type ChecksHandle, runChecks } from "../src/driver/mod.js";
import { waitFor } from "./wait.js";

const servers: Server[] = [];
const handles: ChecksHandle[] = [];

afterEach(() => {
  for (const h of handles.splice(0)) h.stop();
  for (const s of servers.splice(0)) s.close();
});

/** An HTTP server on 127.0.0.1:0 whose status the test sets; it records the requests it gets. */
async function statusServer(): Promise<{
  port: number;
  status: { code: number };
  requests: IncomingMessage[];
}> {
  const status = { code: 200 };
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    res.statusCode = status.code;
    res.end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, status, requests };
}

function watch(
  checks: Parameters<typeof runChecks>[0],
  port: number,
  portMap?: (p: number) => number,
): Array<{ name: string; status: string; output: string }> {
  const changes: Array<{ name: string; status: string; output: string }> = [];
  handles.push(
    runChecks(
      checks,
      { ip: "127.0.0.1", port },
      (name, status, output) => changes.push({ name, status, output }),
      portMap,
    ),
  );
  return changes;
}

describe("runChecks", () => {
  it("http: passes on 2xx and 3xx, fails otherwise, and reports only changes", async () => {
    const { port, status, requests } = await statusServer();
    const changes = watch({ web: { type: "http", interval: "50ms", timeout: "1s" } }, port);
    await waitFor("the first result", () => changes[0]);
    expect(changes).toEqual([{ name: "web", status: "passing", output: "HTTP 200 OK" }]);

    // 302 still passes: no new report however many rounds run.
    status.code = 302;
    const seen = requests.length;
    await waitFor("rounds with 302", () => (requests.length >= seen + 3 ? true : undefined));
    expect(changes).toHaveLength(1);

    status.code = 503;
    await waitFor("critical", () => changes[1]);
    expect(changes[1]).toEqual({ name: "web", status: "critical", output: "HTTP 503 Service Unavailable" });
    status.code = 204;
    await waitFor("passing again", () => changes[2]);
    expect(changes[2]?.status).toBe("passing");
  });

  it("http: sends the method, path and headers, on the port the map gives", async () => {
    const { port, requests } = await statusServer();
    const changes = watch(
      {
        web: {
          type: "http",
          port: 8080,
          method: "head",
          path: "/healthz?deep=1",
          headers: [{ name: "X-Check", values: ["a", "b"] }],
          interval: "1m",
        },
      },
      1,
      (p) => (p === 8080 ? port : p),
    );
    await waitFor("the first result", () => changes[0]);
    expect(changes[0]?.status).toBe("passing");
    expect(requests[0]).toMatchObject({ method: "HEAD", url: "/healthz?deep=1" });
    expect(requests[0]?.headers["x-check"]).toBe("a, b");
  });

  it("http: a path, method or header Node cannot send makes the check critical, saying so, and ends nothing", async () => {
    const { port, requests } = await statusServer();
    const changes = watch(
      {
        spaced: { type: "http", interval: "50ms", timeout: "1s", path: "/health check" },
        method: { type: "http", interval: "50ms", timeout: "1s", method: "GE T" },
        header: {
          type: "http",
          interval: "50ms",
          timeout: "1s",
          headers: [{ name: "X-Bad", values: ["a\nb"] }],
        },
      },
      port,
    );
    await waitFor("three results", () => (changes.length >= 3 ? changes : undefined));
    for (const name of ["spaced", "method", "header"]) {
      const change = changes.find((c) => c.name === name);
      expect(change?.status, name).toBe("critical");
      expect(change?.output, name).toMatch(/^the check cannot be sent: /);
    }
    // Rounds go on (the process lives); nothing reached the server.
    await sleep(200);
    expect(requests).toHaveLength(0);
  });

  it("http: a server that does not answer in time is critical", async () => {
    const server = createServer(() => {});
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const changes = watch({ slow: { type: "http", timeout: "100ms", interval: "1m" } }, port);
    await waitFor("the first result", () => changes[0]);
    expect(changes[0]).toEqual({ name: "slow", status: "critical", output: "timed out after 100ms" });
    server.closeAllConnections();
  });

  it("tcp: passing while something listens, critical once it stops", async () => {
    const { port } = await statusServer();
    const changes = watch({ tcp: { type: "tcp", interval: "50ms" } }, port);
    await waitFor("passing", () => changes[0]);
    expect(changes[0]?.status).toBe("passing");
    servers.pop()?.close();
    await waitFor("critical", () => changes[1]);
    expect(changes[1]).toMatchObject({
      name: "tcp",
      status: "critical",
      output: expect.stringContaining("ECONNREFUSED"),
    });
  });

  it("passes soon after the program is ready, not a whole interval after a first failed round", async () => {
    // A program still starting: it answers 503 until it is ready.
    const { port, status } = await statusServer();
    status.code = 503;
    const changes = watch({ web: { type: "http", interval: "10m" } }, port);
    await waitFor("the first result", () => changes[0]);
    expect(changes[0]?.status).toBe("critical");
    await sleep(300);
    status.code = 200;
    // The next rounds come every 100 ms until the first pass: 100 ms after it is ready, not 10 minutes.
    await waitFor("passing", () => changes[1]);
    expect(changes[1]?.status).toBe("passing");
  });

  it("tries a check that has not passed yet every 100 ms through its first interval", async () => {
    const { port, requests, status } = await statusServer();
    status.code = 503;
    watch({ web: { type: "http", interval: "2s" } }, port);
    await sleep(1_900);
    // Every 100 ms: about 19 rounds; waits doubling from 100 ms would have made 5 (0, 100, 300, 700,
    // 1500 ms). Counted loosely: a busy machine's timers run late.
    expect(requests.length).toBeGreaterThanOrEqual(8);
  });

  it("waits out the grace period, and reports nothing after stop", async () => {
    const { port, requests, status } = await statusServer();
    const changes = watch({ web: { type: "http", grace_period: "1m", interval: "50ms" } }, port);
    await sleep(200);
    expect(requests).toHaveLength(0);
    expect(changes).toHaveLength(0);

    const c2 = watch({ web: { type: "http", interval: "50ms" } }, port);
    await waitFor("the first result", () => c2[0]);
    handles.pop()?.stop();
    // A probe in flight at stop() is aborted and its result dropped.
    status.code = 503;
    await sleep(200);
    expect(c2).toHaveLength(1);
  });
});
