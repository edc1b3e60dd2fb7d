import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { BlobNotFoundError, BlobStore, DigestMismatchError, digestOf } from "../src/mod.js";

let nc: NatsConnection;
let blobs: BlobStore;
let dir: string;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  blobs = await BlobStore.open(nc, { bucket: `oci-test-blobs-${process.pid}` });
  dir = await mkdtemp(join(tmpdir(), "oci-blobs-"));
});
afterAll(async () => {
  await nc?.drain();
  await rm(dir, { recursive: true, force: true });
});

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

it("round-trips bytes, files and streams under their digest", async () => {
  const big = Buffer.alloc(1_300_000, 7); // spans several object store chunks
  const put = await blobs.putBytes(big);
  expect(put).toEqual({ digest: digestOf(big), size: big.byteLength });
  expect(await blobs.has(put.digest)).toBe(true);
  expect(await blobs.size(put.digest)).toBe(big.byteLength);
  expect(Buffer.from(await blobs.getBytes(put.digest)).equals(big)).toBe(true);

  const streamed = await blobs.putStream(chunks("hello ", "world"));
  expect(streamed.digest).toBe(digestOf("hello world"));
  expect(Buffer.from(await blobs.getBytes(streamed.digest)).toString()).toBe("hello world");

  const src = join(dir, "in");
  await writeFile(src, "from a file");
  const fromFile = await blobs.putFile(src);
  expect(fromFile.digest).toBe(digestOf("from a file"));
  const out = join(dir, "out");
  await blobs.toFile(fromFile.digest, out);
  expect(await readFile(out, "utf8")).toBe("from a file");

  // Putting the same content again is a no-op that still answers its digest.
  expect(await blobs.putStream(chunks("hello world"), digestOf("hello world"))).toEqual(streamed);
});

it("refuses content that does not match the expected digest and stores nothing", async () => {
  const expected = digestOf("the real content");
  await expect(blobs.putStream(chunks("forged ", "content"), expected)).rejects.toBeInstanceOf(
    DigestMismatchError,
  );
  await expect(blobs.putBytes(Buffer.from("forged"), expected)).rejects.toBeInstanceOf(DigestMismatchError);
  expect(await blobs.has(expected)).toBe(false);
  expect(await blobs.has(digestOf("forged content"))).toBe(false);
});

it("reports a missing blob", async () => {
  const missing = digestOf("never stored");
  expect(await blobs.size(missing)).toBeUndefined();
  await expect(blobs.getStream(missing)).rejects.toBeInstanceOf(BlobNotFoundError);
  await expect(blobs.toFile(missing, join(dir, "never"))).rejects.toMatchObject({ code: "blob_unknown" });
});
