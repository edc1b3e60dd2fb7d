import { createHash, randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import { EDGE_BUNDLE_MAX_BYTES, edgeBundleName } from "@hangar/config";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReleaseView } from "../src/http/releases-backend.js";
import { type BuildsGateway, startBuildsGateway } from "./builds-harness.js";

let gw: BuildsGateway;

beforeAll(async () => {
  gw = await startBuildsGateway(`gwe${randomBytes(3).toString("hex")}`, {
    orgs: { router: "acme", hello: "acme", shop: "rival" },
  });
  for (const app of ["router", "hello", "shop"]) await gw.createApp(app);
});
afterAll(() => gw?.stop());

const digestOf = (code: string) => `sha256:${createHash("sha256").update(code).digest("hex")}`;
const HELLO = 'fly.http.respondWith(() => new Response("hello"));\n';
const BYE = 'export default { fetch: () => new Response("bye") };\n';

function upload(app: string, body: string | Uint8Array, headers: Record<string, string> = {}, query = "") {
  return gw.request(`/v1/apps/${app}/edge/bundles${query}`, {
    method: "POST",
    headers: { "content-type": "application/javascript", ...headers },
    body,
  });
}

function createRelease(app: string, body: unknown) {
  return gw.request(`/v1/apps/${app}/releases`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function release(app: string, body: unknown): Promise<ReleaseView> {
  const res = await createRelease(app, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as ReleaseView;
}

describe("edge bundles", () => {
  it("stores a bundle by its digest, once: the same code again is a 200 with the same digest", async () => {
    const first = await upload("router", HELLO);
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ digest: digestOf(HELLO), size: Buffer.byteLength(HELLO) });
    const again = await upload("router", HELLO, {}, `?digest=${digestOf(HELLO)}`);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ digest: digestOf(HELLO), size: Buffer.byteLength(HELLO) });
    const stored = await gw.edgeBundles.os.getBlob(edgeBundleName("router", digestOf(HELLO)));
    expect(new TextDecoder().decode(stored ?? new Uint8Array())).toBe(HELLO);
  });

  it("refuses a digest that does not match, a body that is not UTF-8 or empty, one too big", async () => {
    const wrong = await upload("router", BYE, {}, `?digest=${digestOf(HELLO)}`);
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toEqual({
      error: `digest: the body's digest is ${digestOf(BYE)}, not ${digestOf(HELLO)} (the bundle changed on its way)`,
      status: "invalid_argument",
    });
    expect(await gw.edgeBundles.has("router", digestOf(BYE))).toBe(false);
    const binary = await upload("router", new Uint8Array([0x66, 0xff, 0xfe]));
    expect(binary.status).toBe(400);
    expect(((await binary.json()) as { error: string }).error).toMatch(/not UTF-8/);
    expect((await upload("router", "")).status).toBe(400);
    const big = await upload("router", "x".repeat(EDGE_BUNDLE_MAX_BYTES + 1));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { status: string }).status).toBe("resource_exhausted");
    const tar = await upload("router", HELLO, { "content-type": "application/x-tar" });
    expect(tar.status).toBe(415);
  });

  it("authorizes as the other app endpoints: 401 without a token, 404 for another org's app, 403 read-only", async () => {
    const anonymous = await gw.api.request("/v1/apps/router/edge/bundles", { method: "POST", body: HELLO });
    expect(anonymous.status).toBe(401);
    const rival = mintToken(gw.key, { id: "tok_rival", kind: "org", org: "rival" });
    const acme = mintToken(gw.key, { id: "tok_acme", kind: "org", org: "acme" });
    const acmeReadOnly = mintToken(gw.key, { id: "tok_acme_ro", kind: "org", org: "acme", readOnly: true });
    const as = (token: string, app: string) =>
      gw.api.request(`/v1/apps/${app}/edge/bundles`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
        body: BYE,
      });
    const foreign = await as(rival, "router");
    expect(foreign.status).toBe(404);
    expect(await foreign.json()).toEqual({ error: "app router not found", status: "not_found" });
    expect((await as(acmeReadOnly, "router")).status).toBe(403);
    expect((await as(rival, "shop")).status).toBe(201);
    expect((await as(acme, "router")).status).toBe(201);
    // Another org's token cannot release the app either, even naming a bundle it has.
    const release = await gw.api.request("/v1/apps/router/releases", {
      method: "POST",
      headers: { authorization: `Bearer ${rival}`, "content-type": "application/json" },
      body: JSON.stringify({ edge_bundle: digestOf(BYE) }),
    });
    expect(release.status).toBe(404);
    expect((await upload("nope", HELLO)).status).toBe(404);
  });
});

describe("edge releases", () => {
  it("releases an uploaded bundle with the config's limits, and refuses one the app has not uploaded", async () => {
    await upload("hello", HELLO);
    const r = await release("hello", {
      edge_bundle: digestOf(HELLO),
      config: { app: "hello", edge: { cpu_ms: 20 } },
      deploy: true,
    });
    expect(r).toMatchObject({
      version: 1,
      status: "pending",
      image: "",
      strategy: "immediate",
      deploy: true,
      edge: { bundle: digestOf(HELLO), cpu_ms: 20, memory_mb: 128 },
    });
    const listed = (await (await gw.request("/v1/apps/hello/releases")).json()) as ReleaseView[];
    expect(listed[0]?.edge).toEqual(r.edge);
    // shop (another org) uploaded BYE; hello did not: the bundle is another app's, so not found here.
    const missing = await createRelease("hello", { edge_bundle: digestOf(BYE) });
    expect(missing.status).toBe(422);
    expect(await missing.json()).toEqual({
      error: `edge_bundle: ${digestOf(BYE)} was not uploaded to app hello (POST /v1/apps/hello/edge/bundles)`,
      status: "edge_bundle_not_found",
    });
    const both = await createRelease("hello", {
      edge_bundle: digestOf(HELLO),
      image: `registry.local/hello@sha256:${"a".repeat(64)}`,
    });
    expect(both.status).toBe(400);
    const badLimit = await createRelease("hello", {
      edge_bundle: digestOf(HELLO),
      config: { edge: { memory_mb: 1 } },
    });
    expect(badLimit.status).toBe(400);
    expect(((await badLimit.json()) as { error: string }).error).toMatch(/^config\.edge\.memory_mb: /);
    const badDigest = await createRelease("hello", { edge_bundle: "sha256:abc" });
    expect(badDigest.status).toBe(400);
  });

  it("rolls back to an earlier edge release: a new release with its bundle and limits", async () => {
    await upload("router", BYE);
    const v1 = await release("router", {
      edge_bundle: digestOf(HELLO),
      config: { app: "router", edge: { cpu_ms: 30, memory_mb: 64 } },
      deploy: true,
    });
    const v2 = await release("router", {
      edge_bundle: digestOf(BYE),
      config: { app: "router", edge: {} },
      deploy: true,
    });
    expect(v2.edge).toEqual({ bundle: digestOf(BYE), cpu_ms: 50, memory_mb: 128 });
    const back = await release("router", { rollback_of: v1.version, deploy: true });
    expect(back).toMatchObject({
      version: v2.version + 1,
      rollback_of: v1.version,
      image: "",
      edge: { bundle: digestOf(HELLO), cpu_ms: 30, memory_mb: 64 },
      config: v1.config,
    });
  });
});
