import type { MachineLogLine } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import { createApi } from "../http/api.js";
import type { MachinesBackend } from "../http/backend.js";
import type { LogFilter, LogRead, LogsReader } from "./app-logs.js";

const { auth: AUTH, token: TOKEN } = testAuth();

function line(seq: number, text: string, stream: "stdout" | "stderr" = "stdout"): MachineLogLine {
  return {
    ts: `2026-12-04T10:00:0${seq}.000Z`,
    seq,
    app: "web",
    machine_id: "m1",
    region: "ams",
    stream,
    line: text,
  };
}

/** An app "web" with machine m1: the recent lines, then (when following) one live line, then waits for the end. */
class Reader implements LogsReader {
  readonly reads: Array<{ app: string; filter: LogFilter; read: LogRead }> = [];
  appExists = (app: string) => app === "web";
  machineExists = (app: string, id: string) => app === "web" && id === "m1";
  async *logs(app: string, filter: LogFilter, read: LogRead): AsyncGenerator<MachineLogLine> {
    this.reads.push({ app, filter, read });
    yield line(1, "listening");
    yield line(2, "oops", "stderr");
    if (!read.follow) return;
    yield line(3, "live");
    await new Promise((resolve) => read.signal.addEventListener("abort", resolve));
  }
}

function api(reader: LogsReader) {
  return createApi({
    // Only the logs route is called; the machines backend is never reached.
    backend: {} as MachinesBackend,
    auth: AUTH,
    logger: createLogger("test", { level: "silent" }),
    metrics: new Registry(),
    logs: reader,
  });
}

const get = (reader: LogsReader, path: string, headers: Record<string, string> = {}) =>
  Promise.resolve(api(reader).request(path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } }));

describe("GET /v1/apps/{app}/logs", () => {
  it("refuses a request without a token, in Fly's error shape", async () => {
    const reader = new Reader();
    const res = await Promise.resolve(api(reader).request("/v1/apps/web/logs?no_tail=true"));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: "missing Authorization: Bearer <token> header",
      status: "unauthenticated",
    });
    const wrong = await get(reader, "/v1/apps/web/logs", { authorization: "Bearer nope" });
    expect(wrong.status).toBe(401);
    expect(reader.reads).toEqual([]);
  });

  it("answers 404 for an unknown app or a machine not in the app", async () => {
    const reader = new Reader();
    const app = await get(reader, "/v1/apps/nope/logs");
    expect(app.status).toBe(404);
    expect(await app.json()).toEqual({ error: "app nope not found", status: "not_found" });
    const machine = await get(reader, "/v1/apps/web/logs?instance=m2");
    expect(machine.status).toBe(404);
    expect(reader.reads).toEqual([]);
  });

  it("refuses filters that are not a machine id or a region, and a bad limit", async () => {
    const reader = new Reader();
    for (const query of [
      "machine_id=m1.*",
      "instance=%3E",
      "machine_id=m1&instance=m2",
      "region=a.b",
      "region=*",
      "limit=0",
      "limit=1001",
      "no_tail=maybe",
    ]) {
      const res = await get(reader, `/v1/apps/web/logs?${query}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { status: string }).status).toBe("invalid_argument");
    }
    expect(reader.reads).toEqual([]);
  });

  it("with no_tail: the recent lines as NDJSON in Fly's log shape, then the end", async () => {
    const reader = new Reader();
    const res = await get(reader, "/v1/apps/web/logs?no_tail=true&instance=m1&region=ams&limit=5");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const entries = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(entries).toEqual([
      {
        timestamp: "2026-12-04T10:00:01.000Z",
        message: "listening",
        level: "info",
        instance: "m1",
        region: "ams",
        meta: { instance: "m1", region: "ams", event: { provider: "app" }, stream: "stdout", seq: 1 },
      },
      expect.objectContaining({ message: "oops", level: "error" }),
    ]);
    expect(reader.reads[0]).toMatchObject({
      app: "web",
      filter: { machineId: "m1", region: "ams" },
      read: { limit: 5, follow: false },
    });
    const follow = await get(reader, "/v1/apps/web/logs?follow=false");
    await follow.text();
    expect(reader.reads[1]?.read).toMatchObject({ limit: 100, follow: false });
  });

  it("follows by default, as Server-Sent Events when asked, and ends the read when the client goes away", async () => {
    const reader = new Reader();
    const res = await get(reader, "/v1/apps/web/logs", { accept: "text/event-stream" });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const body = res.body?.getReader();
    if (!body) throw new Error("no body");
    let text = "";
    const decoder = new TextDecoder();
    while (!text.includes('"live"')) text += decoder.decode((await body.read()).value);
    const frames = text.trim().split("\n\n");
    expect(frames).toHaveLength(3);
    expect(frames[0]?.split("\n").slice(0, 2)).toEqual(["id: m1:1", "event: log"]);
    expect(JSON.parse(frames[2]?.split("\n")[2]?.slice("data: ".length) ?? "")).toMatchObject({
      message: "live",
    });
    const { read } = reader.reads[0] as { read: LogRead };
    expect(read.follow).toBe(true);
    expect(read.signal.aborted).toBe(false);
    await body.cancel();
    expect(read.signal.aborted).toBe(true);
  });
});
