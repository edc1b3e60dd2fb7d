import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiClient, ApiError } from "./api.js";
import { CliError } from "./cli-error.js";
import {
  formatEvent,
  type PublicEvent,
  parseSince,
  parseTypes,
  readEvents,
  summarizeEvent,
} from "./events.js";

const event = (id: number, data: Record<string, unknown> = {}): PublicEvent => ({
  id: String(id),
  schema: "hangar.event.v1",
  type: "machine.started",
  app: "web",
  org: "acme",
  time: "2026-12-05T14:00:00.000Z",
  subject: `web.m${id}`,
  data,
});

describe("hangar events' arguments", () => {
  it("takes event types and machine.*, and refuses anything else with what to pass", () => {
    expect(parseTypes("machine.started, release.created")).toEqual(["machine.started", "release.created"]);
    expect(parseTypes("machine.*")).toEqual(["machine.*"]);
    expect(() => parseTypes("machine")).toThrow(CliError);
    expect(() => parseTypes("machine.started,Bad Type")).toThrow(/not a type: Bad Type/);
    expect(() => parseTypes(",")).toThrow(/none given/);
  });

  it("takes an event id for --since, and nothing else", () => {
    expect(parseSince("1234")).toBe("1234");
    expect(parseSince("1234.1")).toBe("1234.1");
    expect(() => parseSince("yesterday")).toThrow(CliError);
    expect(() => parseSince("-1")).toThrow(/event id such as 1234/);
  });
});

describe("hangar events' lines", () => {
  it("prints time, app, type, subject and a summary with the telling fields first", () => {
    const e = event(7, { machine_id: "m7", region: "local", state: "started", config: { image: "x" } });
    expect(formatEvent(e)).toBe(
      "2026-12-05T14:00:00.000Z web machine.started web.m7 state=started region=local machine_id=m7",
    );
  });

  it("prints - for an event of no app, quotes text with spaces and cuts a long summary", () => {
    const e = { ...event(1, { reason: "load above target" }), app: null, subject: "db" };
    expect(formatEvent(e)).toBe('2026-12-05T14:00:00.000Z - machine.started db reason="load above target"');
    const long = summarizeEvent(event(2, { message: "x".repeat(300) }));
    expect(long.length).toBe(100);
    expect(long.endsWith("…")).toBe(true);
  });
});

let server: Server | undefined;
afterEach(() => server?.close());

/**
 * An SSE server holding `total` events; each request gets the events after its Last-Event-ID (or
 * the last `tail`), and, while `drops` lasts, loses its connection after `perConnection` events.
 */
async function serveFeed(total: number, options: { drops: number; perConnection: number }) {
  const requests: IncomingMessage[] = [];
  let drops = options.drops;
  server = createServer((req, res) => {
    requests.push(req);
    const url = new URL(req.url ?? "/", "http://x");
    if (url.searchParams.get("types") === "nope.nope") {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "unknown event type nope.nope", status: "bad_request" }));
      return;
    }
    const last = req.headers["last-event-id"];
    const tail = Number(url.searchParams.get("tail") ?? 0);
    const from = last === undefined ? Math.max(0, total - tail) : Number(last);
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(": hello\n\n");
    let sent = 0;
    for (let id = from + 1; id <= total; id++) {
      if (drops > 0 && sent === options.perConnection) {
        drops--;
        // Dropped mid-stream once what was written has reached the socket.
        res.write("", () => res.destroy());
        return;
      }
      res.write(`id: ${id}\ndata: ${JSON.stringify(event(id))}\n\n`);
      sent++;
    }
    // Following: the stream stays open for live events; otherwise it ends once caught up.
    if (url.searchParams.get("follow") === "false") res.end();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const api = new ApiClient({
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token: "t",
  });
  return { api, requests };
}

describe("reading the event stream", () => {
  it("without --follow asks for the recent events and ends once the gateway has sent them", async () => {
    const { api, requests } = await serveFeed(150, { drops: 0, perConnection: 0 });
    const ids: string[] = [];
    for await (const e of readEvents(api, { app: "web", follow: false, types: ["machine.*"] }))
      ids.push(e.id);
    expect(ids).toEqual(Array.from({ length: 100 }, (_, i) => String(51 + i)));
    const url = new URL(requests[0]?.url ?? "", "http://x");
    expect(url.pathname).toBe("/v1/apps/web/events/stream");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      types: "machine.*",
      follow: "false",
      tail: "100",
    });
    expect(requests[0]?.headers.accept).toBe("text/event-stream");
  });

  it("with --follow resumes after the last event it saw each time the stream drops: nothing lost or doubled", async () => {
    const { api, requests } = await serveFeed(20, { drops: 3, perConnection: 4 });
    const stop = new AbortController();
    const resumed: Array<string | undefined> = [];
    const ids: string[] = [];
    const read = readEvents(
      api,
      { follow: true, since: "2" },
      {
        signal: stop.signal,
        resumeDelayMs: 1,
        onResume: (lastId) => resumed.push(lastId),
      },
    );
    for await (const e of read) {
      ids.push(e.id);
      if (e.id === "20") break;
    }
    stop.abort();
    expect(ids).toEqual(Array.from({ length: 18 }, (_, i) => String(3 + i)));
    expect(resumed).toEqual(["6", "10", "14"]);
    expect(requests.map((r) => r.headers["last-event-id"])).toEqual(["2", "6", "10", "14"]);
    expect(new URL(requests[0]?.url ?? "", "http://x").pathname).toBe("/v1/events/stream");
  });

  it("ends with the API's error on a refused request, even when following", async () => {
    const { api, requests } = await serveFeed(5, { drops: 0, perConnection: 0 });
    const read = readEvents(api, { follow: true, types: ["nope.nope"] }, { resumeDelayMs: 1 });
    await expect(read.next()).rejects.toThrow(ApiError);
    expect(requests).toHaveLength(1);
  });
});
