// Issue 13 security review: an image ref is checked against the org of the app that runs it. A
// repository belongs to the app its first path segment names, so org zeta may not run acme's
// images by bare name, by Hangar's registry host or by any other host (hosts pull every ref from
// Hangar's registry), in a new machine, an update or a release: each is answered 404 `image <ref>
// not found`, as if it did not exist, and acme itself runs them. A ref of no app (an operator's
// base such as library/node) stays open to both; an app named like an official image (`redis`)
// does not capture another org's `redis:7`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helloConfig, startTestPlatform, type TestPlatform } from "../platform/harness.js";

let p: TestPlatform;
const tokens: Record<"acme" | "zeta", string> = { acme: "", zeta: "" };
const machines: Record<"acme" | "zeta", string> = { acme: "", zeta: "" };

async function org(slug: "acme" | "zeta", apps: string[]): Promise<void> {
  const created = await p.api.ok<{ token: string }>("POST", "/orgs", { slug });
  tokens[slug] = created.token;
  for (const app of apps) {
    const res = await p.api.call(
      "POST",
      "/apps",
      { app_name: app, org_slug: slug },
      { token: created.token },
    );
    expect(res.status).toBe(201);
  }
  const m = await p.api.call<{ id: string }>(
    "POST",
    `/apps/${slug}-web/machines`,
    { config: helloConfig(), skip_launch: true },
    { token: created.token },
  );
  expect(m.status).toBe(200);
  machines[slug] = m.body.id;
}

const create = (slug: "acme" | "zeta", image: string) =>
  p.api.call<{ error?: string }>(
    "POST",
    `/apps/${slug}-web/machines`,
    { config: helloConfig({ image }), skip_launch: true },
    { token: tokens[slug] },
  );
const update = (slug: "acme" | "zeta", image: string) =>
  p.api.call<{ error?: string }>(
    "POST",
    `/apps/${slug}-web/machines/${machines[slug]}`,
    { config: helloConfig({ image }), skip_launch: true },
    { token: tokens[slug] },
  );
const release = (slug: "acme" | "zeta", image: string) =>
  p.api.call<{ error?: string }>("POST", `/apps/${slug}-web/releases`, { image }, { token: tokens[slug] });

// acme's images, however the ref spells them; `redis` is an app of acme named like an official image.
const ACME_IMAGES = [
  "acme-web:latest",
  "acme-web",
  "acme-web/sidecar:v1",
  "registry.hangar.internal/acme-web:v1",
  "localhost:5000/acme-web:v1",
  `acme-web@sha256:${"a".repeat(64)}`,
  "redis:7",
];
const BASES = ["library/node:20", "node:20", "registry.hangar.internal/library/alpine:3"];

beforeAll(async () => {
  p = await startTestPlatform();
  await org("acme", ["acme-web", "redis"]);
  await org("zeta", ["zeta-web"]);
}, 120_000);

afterAll(async () => {
  await p?.close();
});

describe("image refs and orgs", () => {
  it("refuses another org's image as not found at machine create, update and release", async () => {
    for (const image of ACME_IMAGES) {
      for (const call of [create, update, release]) {
        const res = await call("zeta", image);
        expect([image, call.name, res.status]).toEqual([image, call.name, 404]);
        expect(res.body.error).toBe(`image ${image} not found`);
      }
    }
  });

  it("lets the owning org run its images", async () => {
    for (const image of ACME_IMAGES) {
      expect([image, (await create("acme", image)).status]).toEqual([image, 200]);
      expect([image, (await update("acme", image)).status]).toEqual([image, 200]);
      expect([image, (await release("acme", image)).status]).toEqual([image, 201]);
    }
  });

  it("leaves repositories of no app (operator bases) open to every org", async () => {
    for (const slug of ["acme", "zeta"] as const) {
      for (const image of BASES) {
        expect([slug, image, (await create(slug, image)).status]).toEqual([slug, image, 200]);
        expect([slug, image, (await release(slug, image)).status]).toEqual([slug, image, 201]);
      }
    }
  });
});
