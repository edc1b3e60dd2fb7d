import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildView } from "../src/http/builds-backend.js";
import type { ReleaseView } from "../src/http/releases-backend.js";
import { type BuildsGateway, startBuildsGateway } from "./builds-harness.js";

let gw: BuildsGateway;

beforeAll(async () => {
  gw = await startBuildsGateway(`gwr${randomBytes(3).toString("hex")}`);
  for (const app of ["web", "api", "other"]) await gw.createApp(app);
});
afterAll(() => gw?.stop());

const IMAGE = `registry.local/web@sha256:${"a".repeat(64)}`;

function send(method: string, path: string, body: unknown) {
  return gw.request(path, {
    method,
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function release(app: string, body: unknown): Promise<ReleaseView> {
  const res = await send("POST", `/v1/apps/${app}/releases`, body);
  expect(res.status).toBe(201);
  return (await res.json()) as ReleaseView;
}

async function build(app: string): Promise<BuildView> {
  const res = await gw.request(`/v1/apps/${app}/builds`, {
    method: "POST",
    headers: { "content-type": "application/x-tar" },
    body: randomBytes(100),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as BuildView;
}

describe("releases", () => {
  it("numbers an app's releases 1, 2 and lists them newest first", async () => {
    const first = await release("web", {
      image: IMAGE,
      config: { app: "web", http_service: { internal_port: 8080 } },
      description: "first",
    });
    expect(first).toMatchObject({
      version: 1,
      status: "pending",
      image: IMAGE,
      build_id: null,
      strategy: "immediate",
      description: "first",
      reason: null,
      machine_ids: [],
      config: { app: "web", http_service: { internal_port: 8080 } },
    });
    expect(first.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(Math.abs(Date.parse(first.created_at) - Date.now())).toBeLessThan(10_000);
    const second = await release("web", { image: IMAGE, strategy: "rolling" });
    expect(second).toMatchObject({ version: 2, strategy: "rolling", description: "" });
    expect(second.id).not.toBe(first.id);
    // Another app counts its own versions.
    expect(await release("api", { image: IMAGE })).toMatchObject({ version: 1 });

    const list = (await (await gw.request("/v1/apps/web/releases")).json()) as ReleaseView[];
    expect(list.map((r) => r.version)).toEqual([2, 1]);
    expect(list[1]).toEqual(first);
    expect(await (await gw.request("/v1/apps/web/releases/2")).json()).toEqual(second);
    expect(await (await gw.request("/v1/apps/other/releases")).json()).toEqual([]);
  });

  it("ends a release once: a second PATCH is a 412", async () => {
    const r = await release("api", { image: IMAGE });
    const ok = await send("PATCH", `/v1/apps/api/releases/${r.version}`, {
      status: "succeeded",
      machine_ids: ["m1", "m2"],
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ...r, status: "succeeded", machine_ids: ["m1", "m2"] });

    for (const body of [
      { status: "failed", reason: "too late" },
      { status: "succeeded", machine_ids: [] },
    ]) {
      const again = await send("PATCH", `/v1/apps/api/releases/${r.version}`, body);
      expect(again.status).toBe(412);
      expect(await again.json()).toEqual({
        error: `release v${r.version} already succeeded`,
        status: "failed_precondition",
      });
    }

    const other = await release("api", { image: IMAGE });
    const failed = await send("PATCH", `/v1/apps/api/releases/${other.version}`, {
      status: "failed",
      reason: "health checks failed on m3",
    });
    expect(failed.status).toBe(200);
    expect(await failed.json()).toMatchObject({ status: "failed", reason: "health checks failed on m3" });
    const shown = (await (await gw.request(`/v1/apps/api/releases/${other.version}`)).json()) as ReleaseView;
    expect(shown.status).toBe("failed");
  });

  it("releases a succeeded build of the app, with its image by default", async () => {
    const b = await build("web");
    const notYet = await send("POST", "/v1/apps/web/releases", { build_id: b.id });
    expect(notYet.status).toBe(400);
    expect(await notYet.json()).toEqual({
      error: `build_id: build ${b.id} is requested; only a succeeded build can be released`,
      status: "invalid_argument",
    });

    const imageRef = `registry.local/web:deployment-${b.id}@sha256:${"c".repeat(64)}`;
    await gw.builder("web", b.id, { type: "StartBuild", builderId: "b1" });
    await gw.builder("web", b.id, {
      type: "SucceedBuild",
      result: { imageRef, manifestDigest: `sha256:${"c".repeat(64)}`, totalSteps: 1, cachedSteps: 0 },
    });
    const r = await release("web", { build_id: b.id, description: "from build" });
    expect(r).toMatchObject({
      status: "pending",
      image: imageRef,
      build_id: b.id,
      description: "from build",
    });

    // A build of another app is not this app's.
    const elsewhere = await send("POST", "/v1/apps/api/releases", { build_id: b.id });
    expect(elsewhere.status).toBe(400);
    expect(await elsewhere.json()).toMatchObject({ error: `build_id: build ${b.id} not found in app api` });
    const unknown = await send("POST", "/v1/apps/web/releases", { build_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
    expect(unknown.status).toBe(400);
  });

  it("answers bad bodies and unknown things in Fly's error shape", async () => {
    const cases: [method: string, path: string, body: unknown, status: number, error: RegExp][] = [
      ["POST", "/v1/apps/web/releases", "{not json", 400, /invalid JSON body/],
      ["POST", "/v1/apps/web/releases", "", 400, /body is required/],
      [
        "POST",
        "/v1/apps/web/releases",
        {},
        400,
        /image: required unless build_id, edge_bundle or rollback_of is given/,
      ],
      ["POST", "/v1/apps/web/releases", { image: 5 }, 400, /image: expected string, received 5/],
      ["POST", "/v1/apps/web/releases", { image: "has space" }, 400, /image:/],
      ["POST", "/v1/apps/web/releases", { image: IMAGE, strategy: "yolo" }, 400, /strategy: expected one of/],
      ["POST", "/v1/apps/web/releases", { image: IMAGE, config: [1] }, 400, /config: expected record/],
      ["PATCH", "/v1/apps/web/releases/1", "[", 400, /invalid JSON body/],
      ["PATCH", "/v1/apps/web/releases/1", { status: "done" }, 400, /status/],
      ["PATCH", "/v1/apps/web/releases/1", { status: "failed" }, 400, /reason: required/],
      ["PATCH", "/v1/apps/web/releases/1", { status: "succeeded" }, 400, /machine_ids: required/],
      ["POST", "/v1/apps/nope/releases", { image: IMAGE }, 404, /app nope not found/],
      ["PATCH", "/v1/apps/web/releases/99", { status: "failed", reason: "x" }, 404, /release v99 not found/],
    ];
    for (const [method, path, body, status, error] of cases) {
      const res = await send(method, path, body);
      const label = `${method} ${path} ${JSON.stringify(body)}`;
      expect(res.status, label).toBe(status);
      const json = (await res.json()) as { error: string; status: string };
      expect(json.error, label).toMatch(error);
      expect(Object.keys(json).sort(), label).toEqual(["error", "status"]);
    }
    for (const path of ["/v1/apps/web/releases/99", "/v1/apps/web/releases/abc", "/v1/apps/nope/releases"]) {
      const res = await gw.request(path);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ status: "not_found" });
    }
  });
});
