import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import type { BuildEvent } from "@hangar/domain";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { BuildEventView, BuildView } from "../src/http/builds-backend.js";
import { startApiServer } from "../src/http/server.js";
import { type BuildsGateway, startBuildsGateway } from "./builds-harness.js";

const LIMIT = 1024 * 1024;
let gw: BuildsGateway;

beforeAll(async () => {
  gw = await startBuildsGateway(`gwb${randomBytes(3).toString("hex")}`, { maxContextBytes: LIMIT });
  await gw.createApp("web");
});
afterAll(() => gw?.stop());

/** A body streamed in chunks, with no content-length, as a client piping a tar sends it. */
function streamed(bytes: Uint8Array, chunk = 100_000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) controller.close();
      else {
        controller.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      }
    },
  });
}

function upload(query: string, body: RequestInit["body"], headers: Record<string, string> = {}) {
  return gw.request(`/v1/apps/web/builds${query}`, {
    method: "POST",
    headers: { "content-type": "application/x-tar", ...headers },
    body,
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  } as RequestInit);
}

async function newBuild(): Promise<BuildView> {
  const res = await upload("", randomBytes(1000));
  expect(res.status).toBe(201);
  return (await res.json()) as BuildView;
}

async function bucketMessages(): Promise<number> {
  return (await gw.contexts.os.status()).streamInfo.state.messages;
}

/** Reads NDJSON lines as they arrive, so a test can act between them. */
function lines(res: Response) {
  const reader = (res.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next(): Promise<BuildEventView | undefined> {
      while (!buffered.includes("\n")) {
        const { done, value } = await reader.read();
        if (done) {
          expect(buffered).toBe("");
          return undefined;
        }
        buffered += value;
      }
      const i = buffered.indexOf("\n");
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      return JSON.parse(line) as BuildEventView;
    },
    cancel: () => reader.cancel(),
  };
}

describe("POST /v1/apps/{app}/builds", () => {
  it("streams the context into the bucket unchanged and requests its build", async () => {
    const context = randomBytes(1_000_000); // two object store chunks, under the limit
    const res = await upload(
      "?dockerfile=docker/Dockerfile.prod&target=runtime&no_cache=true&build_arg=VERSION=1.2&build_arg=OPTS=a=b",
      streamed(context),
    );
    expect(res.status).toBe(201);
    const build = (await res.json()) as BuildView;
    expect(build).toMatchObject({
      app: "web",
      status: "requested",
      steps: [],
      image_ref: null,
      manifest_digest: null,
      cached_steps: 0,
      total_steps: 0,
      duration_ms: null,
    });
    expect(build.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(build).not.toHaveProperty("error");
    expect(Math.abs(Date.parse(build.created_at) - Date.now())).toBeLessThan(10_000);

    const stored = await gw.contexts.os.getBlob(build.id);
    expect(Buffer.from(stored as Uint8Array).equals(context)).toBe(true);

    const { events } = await gw.store.readAggregate(gw.streams.builds, `web.${build.id}`);
    expect(events.map((e) => e.event)).toEqual<BuildEvent[]>([
      {
        type: "BuildRequested",
        data: expect.objectContaining({
          buildId: build.id,
          app: "web",
          contextObject: build.id,
          contextDigest: `sha256:${createHash("sha256").update(context).digest("hex")}`,
          dockerfile: "docker/Dockerfile.prod",
          target: "runtime",
          buildArgs: { VERSION: "1.2", OPTS: "a=b" },
          repository: "web",
          tag: `deployment-${build.id}`,
          noCache: true,
        }),
      },
    ]);
    expect(events[0]?.event.data).not.toHaveProperty("network", true);

    // Readable at once (read your own writes), newest first in the list.
    const later = await newBuild();
    const got = await gw.request(`/v1/apps/web/builds/${build.id}`);
    expect(await got.json()).toEqual(build);
    const list = (await (await gw.request("/v1/apps/web/builds")).json()) as BuildView[];
    const ids = list.map((b) => b.id);
    expect(ids.indexOf(later.id)).toBeLessThan(ids.indexOf(build.id));
  });

  it("accepts application/octet-stream and refuses other media types", async () => {
    const ok = await upload("", randomBytes(10), { "content-type": "application/octet-stream" });
    expect(ok.status).toBe(201);
    const refused = await upload("", "{}", { "content-type": "application/json" });
    expect(refused.status).toBe(415);
    expect(await refused.json()).toMatchObject({ error: expect.stringMatching(/x-tar/) });
  });

  it("refuses a context over the limit with 413 and keeps nothing of it", async () => {
    const before = await bucketMessages();
    const buildsBefore = gw.builds.buildsOf("web").length;

    const streamedOver = await upload("", streamed(randomBytes(LIMIT + 200_000)));
    expect(streamedOver.status).toBe(413);
    expect(await streamedOver.json()).toEqual({
      error: expect.stringMatching(/larger than 1 MB.*HANGAR_GATEWAY_MAX_CONTEXT_MB/),
      status: "resource_exhausted",
    });
    // Declared too large: refused before a byte is read.
    const declaredOver = await upload("", randomBytes(LIMIT + 1));
    expect(declaredOver.status).toBe(413);

    expect(await bucketMessages()).toBe(before);
    expect(gw.builds.buildsOf("web")).toHaveLength(buildsBefore);
    // Exactly the limit is fine.
    expect((await upload("", streamed(randomBytes(LIMIT)))).status).toBe(201);
  });

  it("answers 404 for an unknown app or build, 400 for an empty body or bad options", async () => {
    const unknownApp = await gw.request("/v1/apps/nope/builds", {
      method: "POST",
      headers: { "content-type": "application/x-tar" },
      body: randomBytes(10),
    });
    expect(unknownApp.status).toBe(404);
    expect(await unknownApp.json()).toEqual({ error: "app nope not found", status: "not_found" });
    expect((await gw.request("/v1/apps/nope/builds")).status).toBe(404);
    const unknownBuild = await gw.request("/v1/apps/web/builds/01ARZ3NDEKTSV4RRFFQ69G5FAV");
    expect(unknownBuild.status).toBe(404);
    expect(await unknownBuild.json()).toMatchObject({ status: "not_found" });
    expect((await gw.request("/v1/apps/web/builds/01ARZ3NDEKTSV4RRFFQ69G5FAV/events")).status).toBe(404);

    const before = await bucketMessages();
    for (const body of [null, new Uint8Array(0), streamed(new Uint8Array(0))]) {
      const empty = await upload("", body);
      expect(empty.status).toBe(400);
      expect(await empty.json()).toEqual({
        error: expect.stringMatching(/context is empty/),
        status: "invalid_argument",
      });
    }
    for (const query of [
      "?build_arg=NOVALUE",
      "?build_arg=1X=2",
      "?dockerfile=../Dockerfile",
      "?no_cache=maybe",
      "?timeout=0",
      "?timeout=1.5",
      "?timeout=86401",
    ]) {
      const bad = await upload(query, randomBytes(10));
      expect(bad.status, query).toBe(400);
      expect(await bad.json()).toMatchObject({ status: "invalid_argument" });
    }
    expect(await bucketMessages()).toBe(before);
  });
});

describe("POST /v1/apps/{app}/builds/{id}/cancel", () => {
  it("fails a build not yet over as cancelled, again the same; a build that is over is 412", async () => {
    const build = await newBuild();
    expect((await gw.contexts.os.info(build.id))?.deleted).toBe(false);
    for (let i = 0; i < 2; i++) {
      const res = await gw.request(`/v1/apps/web/builds/${build.id}/cancel`, { method: "POST" });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: "failed",
        error: { message: "build cancelled", reason: "cancelled" },
      });
    }
    // No builder took it: its context goes with the cancel.
    expect((await gw.contexts.os.info(build.id))?.deleted ?? true).toBe(true);
    const done = await newBuild();
    await gw.builder("web", done.id, { type: "StartBuild", builderId: "b/1" });
    await gw.builder("web", done.id, {
      type: "SucceedBuild",
      result: { imageRef: "registry.hangar.internal/web@sha256:00", manifestDigest: "sha256:00" },
    });
    const over = await gw.request(`/v1/apps/web/builds/${done.id}/cancel`, { method: "POST" });
    expect(over.status).toBe(412);
    expect(await over.json()).toEqual({ error: "build already succeeded", status: "failed_precondition" });
    expect(
      (await gw.request("/v1/apps/web/builds/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel", { method: "POST" })).status,
    ).toBe(404);
  });
});

describe("GET /v1/apps/{app}/builds/{id}/events", () => {
  it("follows a build from its request to its end, then closes", async () => {
    const build = await newBuild();
    const res = await gw.request(`/v1/apps/web/builds/${build.id}/events?follow=true`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const events = lines(res);
    expect(await events.next()).toEqual({ type: "requested" });

    const step = (n: number, cached: boolean) => ({
      stage: 0,
      stageName: "",
      step: n,
      steps: 2,
      line: n,
      instruction: n === 1 ? "FROM scratch" : "COPY . /app",
      cached,
      layerDigest: cached ? "" : "sha256:aa",
      durationMs: 40,
      output: "",
    });
    await gw.builder("web", build.id, { type: "StartBuild", builderId: "builder-1" });
    expect(await events.next()).toEqual({ type: "started", builder_id: "builder-1" });
    await gw.builder("web", build.id, { type: "FinishStep", step: step(1, true) });
    await gw.builder("web", build.id, { type: "FinishStep", step: step(2, false) });
    const imageRef = `web:deployment-${build.id}@sha256:bb`;
    await gw.builder("web", build.id, {
      type: "SucceedBuild",
      result: { imageRef, manifestDigest: "sha256:bb", durationMs: 900, cachedSteps: 1, totalSteps: 2 },
    });
    const stepView = {
      type: "step",
      step: 1,
      steps: 2,
      stage: 0,
      stage_name: "",
      line: 1,
      instruction: "FROM scratch",
      cached: true,
      layer_digest: "",
      duration_ms: 40,
      output: "",
    };
    expect(await events.next()).toEqual(stepView);
    expect(await events.next()).toEqual({
      ...stepView,
      step: 2,
      line: 2,
      instruction: "COPY . /app",
      cached: false,
      layer_digest: "sha256:aa",
    });
    const succeeded = {
      type: "succeeded",
      image_ref: imageRef,
      manifest_digest: "sha256:bb",
      cached_steps: 1,
      total_steps: 2,
      duration_ms: 900,
    };
    expect(await events.next()).toEqual(succeeded);
    expect(await events.next()).toBeUndefined();

    const view = (await (await gw.request(`/v1/apps/web/builds/${build.id}`)).json()) as BuildView;
    expect(view).toMatchObject({
      status: "succeeded",
      image_ref: imageRef,
      manifest_digest: "sha256:bb",
      cached_steps: 1,
      total_steps: 2,
      duration_ms: 900,
    });
    expect(view.steps.map((s) => s.step)).toEqual([1, 2]);

    // Once over, with or without follow, the whole history comes back and the response ends.
    for (const query of ["", "?follow=true"]) {
      const again = lines(await gw.request(`/v1/apps/web/builds/${build.id}/events${query}`));
      const types: string[] = [];
      for (let e = await again.next(); e; e = await again.next()) types.push(e.type);
      expect(types).toEqual(["requested", "started", "step", "step", "succeeded"]);
    }
  });

  it("without follow returns what exists; a failed build shows its error", async () => {
    const build = await newBuild();
    const now = lines(await gw.request(`/v1/apps/web/builds/${build.id}/events`));
    expect(await now.next()).toEqual({ type: "requested" });
    expect(await now.next()).toBeUndefined();

    const failure = {
      message: "RUN exited with 2",
      line: 3,
      instruction: "RUN make",
      output: "make: *** [all] Error 2",
    };
    await gw.builder("web", build.id, { type: "FailBuild", failure: { ...failure, durationMs: 12 } });
    const view = (await (await gw.request(`/v1/apps/web/builds/${build.id}`)).json()) as BuildView;
    expect(view).toMatchObject({ status: "failed", error: failure, duration_ms: 12, image_ref: null });
    const followed = lines(await gw.request(`/v1/apps/web/builds/${build.id}/events?follow=true`));
    expect(await followed.next()).toEqual({ type: "requested" });
    expect(await followed.next()).toEqual({ type: "failed", ...failure });
    expect(await followed.next()).toBeUndefined();
  });

  it("stops reading when the client goes away", async () => {
    const build = await newBuild();
    const consumers = async () => (await gw.store.jsm.consumers.list(gw.streams.builds.name).next()).length;
    const before = await consumers();
    const events = lines(await gw.request(`/v1/apps/web/builds/${build.id}/events?follow=true`));
    expect(await events.next()).toEqual({ type: "requested" });
    expect(await consumers()).toBe(before + 1);
    await events.cancel();
    expect(await consumers()).toBe(before);
  });

  it("stops reading when an HTTP client disconnects", async () => {
    const build = await newBuild();
    const consumers = async () => (await gw.store.jsm.consumers.list(gw.streams.builds.name).next()).length;
    const before = await consumers();
    const server = await startApiServer(gw.api, { port: 0 });
    try {
      // node:http rather than fetch: destroying its request closes the one socket at once.
      const req = httpRequest(`${server.url}/v1/apps/web/builds/${build.id}/events?follow=true`, {
        headers: { authorization: `Bearer ${gw.token}` },
      });
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        req.once("response", resolve).once("error", reject).end();
      });
      expect(res.headers["content-type"]).toBe("application/x-ndjson");
      const first = await new Promise<string>((resolve) =>
        res.once("data", (d: Buffer) => resolve(d.toString())),
      );
      expect(JSON.parse(first)).toEqual({ type: "requested" });
      expect(await consumers()).toBe(before + 1);
      req.destroy();
      // The server notices the closed socket on its own time: wait for it, within a bound.
      await vi.waitFor(async () => expect(await consumers()).toBe(before), { timeout: 5_000, interval: 50 });
    } finally {
      await server.close();
    }
  });
});
