import { describe, expect, it } from "vitest";
import { downstreamResponse, type Forwarding, upstreamRequest, VIA, viaFor } from "./headers.js";

const fwd: Forwarding = {
  clientIp: "10.0.0.7",
  localPort: "8080",
  requestId: "01HZZZZZZZZZZZZZZZZZZZZZZZ",
  via: VIA,
  region: "ams",
};

// Header lists as name -> values, names lower-cased.
function byName(flat: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    out[name] = [...(out[name] ?? []), flat[i + 1] as string];
  }
  return out;
}

describe("upstreamRequest", () => {
  it("keeps end-to-end headers and the host, and drops hop-by-hop ones", () => {
    const { host, headers, hasBody } = upstreamRequest(
      [
        "Host",
        "web.localhost:8080",
        "Accept",
        "*/*",
        "Connection",
        "keep-alive, X-Secret-Hop",
        "Keep-Alive",
        "timeout=5",
        "X-Secret-Hop",
        "1",
        "Proxy-Authorization",
        "Basic x",
        "Proxy-Connection",
        "keep-alive",
        "TE",
        "trailers",
        "Trailer",
        "Expires",
        "Upgrade",
        "websocket",
        "Cookie",
        "a=1",
        "Cookie",
        "b=2",
      ],
      fwd,
      false,
    );
    expect(host).toBe("web.localhost:8080");
    expect(hasBody).toBe(false);
    const h = byName(headers);
    expect(h.host).toEqual(["web.localhost:8080"]);
    expect(h.accept).toEqual(["*/*"]);
    expect(h.cookie).toEqual(["a=1", "b=2"]);
    for (const gone of [
      "connection",
      "keep-alive",
      "x-secret-hop",
      "proxy-authorization",
      "proxy-connection",
      "te",
      "trailer",
      "upgrade",
    ]) {
      expect(h[gone], gone).toBeUndefined();
    }
  });

  it("replaces the client's forwarding headers and appends to X-Forwarded-For and Via", () => {
    const { headers } = upstreamRequest(
      [
        "Host",
        "web.localhost",
        "Fly-Client-IP",
        "6.6.6.6",
        "X-Forwarded-For",
        "1.1.1.1",
        "x-forwarded-for",
        "2.2.2.2",
        "X-Forwarded-Proto",
        "https",
        "X-Forwarded-Port",
        "443",
        "Fly-Request-Id",
        "forged",
        "Fly-Region",
        "forged",
        "Via",
        "1.1 cdn",
      ],
      fwd,
      false,
    );
    const h = byName(headers);
    expect(h["fly-client-ip"]).toEqual(["10.0.0.7"]);
    expect(h["x-forwarded-for"]).toEqual(["1.1.1.1, 2.2.2.2, 10.0.0.7"]);
    expect(h["x-forwarded-proto"]).toEqual(["http"]);
    expect(h["x-forwarded-port"]).toEqual(["8080"]);
    expect(h["fly-request-id"]).toEqual([fwd.requestId]);
    expect(h["fly-region"]).toEqual(["ams"]);
    expect(h.via).toEqual(["1.1 cdn, 1.1 hangar"]);
  });

  it("sets forwarding headers when the client sent none", () => {
    const h = byName(
      upstreamRequest(["Host", "web.localhost"], { ...fwd, region: undefined }, false).headers,
    );
    expect(h["x-forwarded-for"]).toEqual(["10.0.0.7"]);
    expect(h.via).toEqual(["1.1 hangar"]);
    expect(h["fly-region"]).toBeUndefined();
  });

  it("sees a body from Content-Length or Transfer-Encoding, and keeps both", () => {
    expect(upstreamRequest(["Content-Length", "0"], fwd, false).hasBody).toBe(false);
    const sized = upstreamRequest(["Content-Length", "12"], fwd, false);
    expect(sized.hasBody).toBe(true);
    expect(byName(sized.headers)["content-length"]).toEqual(["12"]);
    const chunked = upstreamRequest(["Transfer-Encoding", "chunked"], fwd, false);
    expect(chunked.hasBody).toBe(true);
    expect(byName(chunked.headers)["transfer-encoding"]).toEqual(["chunked"]);
  });

  it("returns the Content-Length, so a body over the replay limit is not kept", () => {
    expect(upstreamRequest(["Content-Length", "2000000"], fwd, false).contentLength).toBe("2000000");
    expect(upstreamRequest(["Transfer-Encoding", "chunked"], fwd, false).contentLength).toBe(undefined);
  });

  it("drops a Fly-Replay-Src the client sent: only the proxy says where a replay came from", () => {
    const { headers } = upstreamRequest(
      ["Fly-Replay-Src", "instance=forged;state=admin", "Accept", "*/*"],
      fwd,
      false,
    );
    expect(byName(headers)["fly-replay-src"]).toBe(undefined);
    expect(byName(headers).accept).toEqual(["*/*"]);
  });

  it("does not let Connection remove the headers that frame or route the request", () => {
    const h = byName(
      upstreamRequest(
        [
          "Host",
          "web.localhost",
          "Content-Length",
          "3",
          "Connection",
          "host, content-length, transfer-encoding",
        ],
        fwd,
        false,
      ).headers,
    );
    expect(h.host).toEqual(["web.localhost"]);
    expect(h["content-length"]).toEqual(["3"]);
  });

  it("keeps Upgrade with Connection: Upgrade for upgrade requests", () => {
    const h = byName(
      upstreamRequest(
        ["Host", "web.localhost", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "k"],
        fwd,
        true,
      ).headers,
    );
    expect(h.connection).toEqual(["Upgrade"]);
    expect(h.upgrade).toEqual(["websocket"]);
    expect(h["sec-websocket-key"]).toEqual(["k"]);
  });
});

describe("downstreamResponse", () => {
  it("drops hop-by-hop headers, appends Via and signs the answer", () => {
    const h = byName(
      downstreamResponse(
        [
          "Content-Type",
          "text/plain",
          "Transfer-Encoding",
          "chunked",
          "Connection",
          "keep-alive, X-Internal",
          "X-Internal",
          "1",
          "Keep-Alive",
          "timeout=5",
          "Proxy-Authenticate",
          "Basic",
          "Via",
          "1.1 app",
          "Fly-Request-Id",
          "from-app",
          "Set-Cookie",
          "a=1",
          "Set-Cookie",
          "b=2",
        ],
        "rid",
        VIA,
        "ams",
        false,
      ),
    );
    expect(h["content-type"]).toEqual(["text/plain"]);
    expect(h["set-cookie"]).toEqual(["a=1", "b=2"]);
    expect(h.via).toEqual(["1.1 app, 1.1 hangar"]);
    expect(h["fly-request-id"]).toEqual(["rid"]);
    expect(h["fly-region"]).toEqual(["ams"]);
    for (const gone of [
      "transfer-encoding",
      "connection",
      "x-internal",
      "keep-alive",
      "proxy-authenticate",
    ]) {
      expect(h[gone], gone).toBeUndefined();
    }
  });

  it("passes the app's Fly-Region through when the proxy has none", () => {
    const h = byName(downstreamResponse(["Fly-Region", "app"], "rid", VIA, undefined, false));
    expect(h["fly-region"]).toEqual(["app"]);
  });

  it("keeps the switch of protocols for upgrades", () => {
    const h = byName(
      downstreamResponse(["Connection", "Upgrade", "Upgrade", "websocket"], "rid", VIA, undefined, true),
    );
    expect(h.connection).toEqual(["Upgrade"]);
    expect(h.upgrade).toEqual(["websocket"]);
  });
});

describe("viaFor", () => {
  it("names the protocol version of the hop", () => {
    expect(viaFor(1, 1)).toBe("1.1 hangar");
    expect(viaFor(1, 0)).toBe("1.0 hangar");
  });
});
