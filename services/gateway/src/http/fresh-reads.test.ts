import { createLogger } from "@hangar/telemetry";
import { NoRespondersError } from "@nats-io/transport-node";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { ApiEnv } from "./context.js";
import { errorHandler } from "./error-handler.js";
import { FRESH_READ_WAIT_MS, type FreshReadsSource, freshReads } from "./fresh-reads.js";

/** A replica that knows `known` and whose store holds `stored` (aggregate -> last sequence). */
function replica(known: Set<string>, stored: Record<string, number>, failLookups = false) {
  const calls: string[] = [];
  const source: FreshReadsSource = {
    appKnown: (app) => known.has(app),
    machineKnown: (app, id) => known.has(`${app}/${id}`),
    lastAppSeq: async (app) => {
      calls.push(`last app ${app}`);
      if (failLookups) throw new NoRespondersError("$JS.API.DIRECT.GET.APPS");
      return stored[app] ?? 0;
    },
    lastMachineSeq: async (app, id) => {
      calls.push(`last machine ${app}/${id}`);
      return stored[`${app}/${id}`] ?? 0;
    },
    // Waiting stands for the view reading what the other replica wrote.
    waitForApps: async (seq, timeoutMs) => {
      calls.push(`wait apps ${seq} ${timeoutMs}`);
      for (const [k, v] of Object.entries(stored)) if (!k.includes("/") && v <= seq) known.add(k);
    },
    waitForMachines: async (seq, timeoutMs) => {
      calls.push(`wait machines ${seq} ${timeoutMs}`);
      for (const [k, v] of Object.entries(stored)) if (k.includes("/") && v <= seq) known.add(k);
    },
  };
  const api = new Hono<ApiEnv>();
  api.onError(errorHandler(createLogger("test", { level: "silent" })));
  api.use("/v1/apps/*", freshReads(source));
  api.all("/v1/apps/:app/*", (c) => c.text(known.has(c.req.param("app")) ? "found" : "missing"));
  api.all("/v1/apps/:app", (c) => c.text(known.has(c.req.param("app")) ? "found" : "missing"));
  return { api, calls, known, source };
}

describe("freshReads", () => {
  it("looks nothing up for an app the replica knows", async () => {
    const r = replica(new Set(["web"]), { web: 3 });
    expect(await (await r.api.request("/v1/apps/web/machines")).text()).toBe("found");
    expect(r.calls).toEqual([]);
  });

  it("waits for the view to read an app another replica stored", async () => {
    const r = replica(new Set(), { web: 7 });
    expect(await (await r.api.request("/v1/apps/web")).text()).toBe("found");
    expect(r.calls).toEqual(["last app web", `wait apps 7 ${FRESH_READ_WAIT_MS}`]);
  });

  it("does not wait for an app nobody created", async () => {
    const r = replica(new Set(), {});
    expect(await (await r.api.request("/v1/apps/nope/machines")).text()).toBe("missing");
    expect(r.calls).toEqual(["last app nope"]);
  });

  it("waits for a machine another replica stored, once the app is known", async () => {
    const r = replica(new Set(["web"]), { web: 1, "web/m1": 9 });
    await r.api.request("/v1/apps/web/machines/m1/start", { method: "POST" });
    expect(r.calls).toEqual(["last machine web/m1", `wait machines 9 ${FRESH_READ_WAIT_MS}`]);
    expect(r.known.has("web/m1")).toBe(true);
  });

  it("answers 503 to retry, not 404, when the lookup fails or the fold stays behind", async () => {
    const failing = replica(new Set(), { web: 2 }, true);
    const res = await failing.api.request("/v1/apps/web");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: "the platform's messaging did not answer in time; try again",
      status: "unavailable",
    });
    const behind = replica(new Set(["web"]), { "web/m1": 4 });
    behind.source.waitForMachines = async () => {
      throw new Error("view did not reach stream sequence 4 within 2000 ms");
    };
    const late = await behind.api.request("/v1/apps/web/machines/m1");
    expect(late.status).toBe(503);
    expect(await late.json()).toEqual({
      error: "this gateway has not read machine m1 yet; try again",
      status: "unavailable",
    });
  });

  it("never looks up a name that is not a plain token (a NATS wildcard, say)", async () => {
    const r = replica(new Set(["web"]), { web: 2 });
    await r.api.request("/v1/apps/we*b/machines");
    await r.api.request("/v1/apps/%3E/machines");
    await r.api.request("/v1/apps/web/machines/m.%3E");
    expect(r.calls).toEqual([]);
  });
});
