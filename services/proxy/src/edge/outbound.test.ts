import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import type { EdgeHttpRequest } from "@hangar/edge";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ProxyEdgeHost } from "./host.js";
import { EdgeFetchRefusedError, refusedForEdge, sendOutbound } from "./outbound.js";

/** A public address this host is given (TEST-NET-1), so its own addresses include a public one. */
const OWN_PUBLIC = "192.0.2.2";
vi.mock("node:os", async (original) => {
  const os = await original<typeof import("node:os")>();
  return {
    ...os,
    networkInterfaces: () => ({
      ...os.networkInterfaces(),
      test0: [
        {
          address: OWN_PUBLIC,
          netmask: "255.255.255.0",
          family: "IPv4",
          mac: "00:00:00:00:00:00",
          internal: false,
          cidr: `${OWN_PUBLIC}/24`,
        },
      ],
    }),
  };
});

let server: Server;
let port: number;
const seen: Array<{
  method: string;
  url: string;
  host: string;
  body: string;
  headers: Record<string, unknown>;
}> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        host: req.headers.host ?? "",
        body: Buffer.concat(chunks).toString(),
        headers: req.headers,
      });
      res.writeHead(207, "Multi", [
        ["X-Answer", "a"],
        ["X-Answer", "b"],
      ]);
      res.end("answer");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const never = new AbortController().signal;
const get = (url: string, extra: Partial<EdgeHttpRequest> = {}): EdgeHttpRequest => ({
  method: "GET",
  url,
  headers: [],
  ...extra,
});

describe("refusedForEdge", () => {
  it("refuses loopback, private, link-local, 6PN and every address of this host", () => {
    for (const a of [
      "127.0.0.1",
      "::1",
      "10.1.2.3",
      "192.168.0.1",
      "169.254.169.254",
      "fdaa:0:1::2",
      "::ffff:127.0.0.1",
    ])
      expect(refusedForEdge(a), a).toBe(true);
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) expect(refusedForEdge(a.address), a.address).toBe(true);
  });

  it("refuses this host's public address in its IPv4-mapped IPv6 forms, as the URL parser writes them", () => {
    const hex = new URL(`http://[::ffff:${OWN_PUBLIC}]/`).hostname.slice(1, -1);
    expect(hex).toBe("::ffff:c000:202");
    for (const a of [OWN_PUBLIC, `::ffff:${OWN_PUBLIC}`, hex, "0:0:0:0:0:FFFF:C000:0202"])
      expect(refusedForEdge(a), a).toBe(true);
    expect(refusedForEdge("::ffff:c000:203")).toBe(false);
  });

  it("lets a public address through", () => {
    expect(refusedForEdge("203.0.113.7")).toBe(false);
  });
});

describe("sendOutbound", () => {
  it("refuses a loopback literal and a name that resolves to loopback, before connecting", async () => {
    const before = seen.length;
    await expect(
      sendOutbound(
        "web",
        get(`http://127.0.0.1:${port}/`),
        { url: new URL(`http://127.0.0.1:${port}/`) },
        never,
      ),
    ).rejects.toThrow(EdgeFetchRefusedError);
    const byName = sendOutbound(
      "web",
      get(`http://localhost:${port}/`),
      { url: new URL(`http://localhost:${port}/`) },
      never,
    );
    await expect(byName).rejects.toThrow(
      /localhost is or resolves to an address of this host or a private one/,
    );
    // The address the name resolved to is not told to the app.
    await expect(byName).rejects.not.toThrow(/127\.0\.0\.1|::1/);
    const mapped = `http://[::ffff:${OWN_PUBLIC}]:${port}/`;
    await expect(sendOutbound("web", get(mapped), { url: new URL(mapped) }, never)).rejects.toThrow(
      EdgeFetchRefusedError,
    );
    await expect(
      sendOutbound("web", get("file:///etc/passwd"), { url: new URL("file:///etc/passwd") }, never),
    ).rejects.toThrow(/http and https only/);
    expect(seen.length).toBe(before);
  });

  it("sends the request with its body and the Host it names, and reads the whole answer, repeated headers kept", async () => {
    const url = new URL(`http://127.0.0.1:${port}/p?q=1`);
    const answer = await sendOutbound(
      "web",
      {
        method: "POST",
        url: url.href,
        headers: [
          ["x-one", "1"],
          ["connection", "close"],
          ["host", "origin.example"],
        ],
        body: new TextEncoder().encode("payload"),
      },
      { url, isRefused: () => false },
      never,
    );
    expect(answer.status).toBe(207);
    expect(answer.statusText).toBe("Multi");
    expect(answer.headers.filter(([n]) => n === "x-answer")).toEqual([
      ["x-answer", "a"],
      ["x-answer", "b"],
    ]);
    expect(Buffer.from(answer.body).toString()).toBe("answer");
    expect(seen.at(-1)).toMatchObject({
      method: "POST",
      url: "/p?q=1",
      host: "origin.example",
      body: "payload",
    });
    expect(seen.at(-1)?.headers).toMatchObject({ "x-one": "1", "content-length": "7" });
  });
});

describe("ProxyEdgeHost fetch of <app>.internal", () => {
  const host = (networks: Record<string, string>) =>
    new ProxyEdgeHost({
      internal: () => ({ host: "127.0.0.1", port }),
      domain: "apps.test",
      privateNetworkOf: (app) => networks[app],
      cache: {
        get: async () => undefined,
        set: async () => {},
        delete: async () => false,
      },
      log: () => {},
    });

  it("goes to the proxy's internal listener with the app's Host, only within the app's private network", async () => {
    const h = host({ web: "personal/default", api: "personal/default", other: "acme/default" });
    const answer = await h.fetch("web", get("http://api.internal:8080/v1?x=2"), never);
    expect(answer.status).toBe(207);
    expect(seen.at(-1)).toMatchObject({ url: "/v1?x=2", host: "api.apps.test" });
    // The app's own Host, in any case, gives way to the app's routed name.
    const hosted = await h.fetch(
      "web",
      get("http://api.internal/", { headers: [["HOST", "evil.example"]] }),
      never,
    );
    expect(hosted.status).toBe(207);
    expect(seen.at(-1)).toMatchObject({ url: "/", host: "api.apps.test" });
    await expect(h.fetch("web", get("http://other.internal/"), never)).rejects.toThrow(
      /no app other in this app's private network/,
    );
    await expect(h.fetch("web", get("http://ghost.internal/"), never)).rejects.toThrow(EdgeFetchRefusedError);
    await expect(h.fetch("web", get("http://m1.vm.api.internal/"), never)).rejects.toThrow(
      /<app>.internal only/,
    );
  });
});
