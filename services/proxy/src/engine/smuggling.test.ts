// Request smuggling defences at the edge: a request whose framing two parsers could read differently
// is refused with 400 before anything reaches a machine (node's strict HTTP parser; the proxy never
// turns on insecureHTTPParser), and a body whose chunk framing breaks midway never ends as a whole
// request at the machine, nor lets what follows it through as a request of its own.
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { createLogger } from "@hangar/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream, stopUpstreams, TestRoutes, type Upstream } from "../../test/harness.js";
import { createProxy, type EdgeProxy } from "./proxy.js";

let proxy: EdgeProxy;
let port: number;
let up: Upstream;
/** Requests the machine read to their end, by method and path. */
const whole: string[] = [];
/** Every request head the machine got, by method and path. */
const heads: string[] = [];

beforeAll(async () => {
  up = await startUpstream("m1", (req, res) => {
    heads.push(`${req.method} ${req.url}`);
    req.resume();
    req.on("end", () => {
      whole.push(`${req.method} ${req.url}`);
      res.end("ok");
    });
  });
  const routes = new TestRoutes();
  routes.set("web", [up.backend]);
  proxy = createProxy({ routes, logger: createLogger("smuggling-test", { level: "silent" }) });
  await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
  port = (proxy.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await proxy.close();
  await stopUpstreams();
});

/**
 * Writes `raw` on a fresh connection (kept open: node aborts a request whose client half-closes) and
 * collects everything the proxy answers until it closes the connection.
 */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    let got = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      got += d;
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(got));
  });
}

const statusLines = (answer: string) => answer.split("\r\n").filter((l) => l.startsWith("HTTP/1."));

describe("framing the proxy refuses", () => {
  const cases: Record<string, string> = {
    "Content-Length with Transfer-Encoding":
      "POST /clte HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
    "Transfer-Encoding with Content-Length":
      "POST /tecl HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    "two different Content-Lengths":
      "POST /cl2 HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 4\r\nContent-Length: 9\r\n\r\nabcd",
    "the same Content-Length twice":
      "POST /cl2same HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    "a Content-Length list":
      "POST /cllist HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 4, 4\r\n\r\nabcd",
    "a Transfer-Encoding that does not end in chunked":
      "POST /te HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "an obs-fold header line": "GET /fold HTTP/1.1\r\nHost: web.localhost\r\nX-A: b\r\n c\r\n\r\n",
  };
  for (const [name, request] of Object.entries(cases)) {
    it(`answers 400 to ${name}, and the machine gets nothing`, async () => {
      const before = up.hits;
      const answer = await raw(request);
      expect(statusLines(answer)).toEqual(["HTTP/1.1 400 Bad Request"]);
      expect(up.hits).toBe(before);
    });
  }
});

describe("a chunked body with a bad chunk size", () => {
  it("answers 400, cuts the machine's request short and never forwards what follows as a request", async () => {
    const answer = await raw(
      "POST /upload HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "zz\r\nGET /admin HTTP/1.1\r\nHost: web.localhost\r\n\r\n",
    );
    expect(statusLines(answer)).toEqual(["HTTP/1.1 400 Bad Request"]);
    // The head may have gone on (bodies stream), but never a whole request, nor the smuggled one.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(whole).not.toContain("POST /upload");
    expect(heads).not.toContain("GET /admin");
  });

  it("still serves a well-framed chunked request on the same proxy", async () => {
    const answer = await raw(
      "POST /fine HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    );
    expect(statusLines(answer)).toEqual(["HTTP/1.1 200 OK"]);
    expect(whole).toContain("POST /fine");
  });
});
