import { randomBytes } from "node:crypto";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiError } from "../http/errors.js";
import { EdgeBundles } from "./bundles.js";

const bucket = `edgebundlesfull${randomBytes(4).toString("hex")}`;
let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
});

afterAll(async () => {
  await (await new Objm(nc).open(bucket)).destroy().catch(() => undefined);
  await nc?.drain();
});

describe("EdgeBundles in a bucket of bounded size", () => {
  it("is made with its max bytes, and an upload past them is refused clearly", async () => {
    const bundles = await EdgeBundles.open(nc, { bucket, maxBytes: 1024 * 1024 });
    expect((await bundles.os.status()).size).toBe(0);
    const code = (fill: string) => new TextEncoder().encode(fill.repeat(600 * 1024));
    expect(await bundles.put("web", "sha256:a", code("a"))).toBe(true);
    const refused = await bundles.put("web", "sha256:b", code("b")).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect(String((refused as Error).message)).toMatch(/edge bundles bucket is full/);
    expect(await bundles.has("web", "sha256:b")).toBe(false);
  });
});
