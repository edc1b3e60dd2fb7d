import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { RegistryError } from "./errors.js";
import { UploadSessions } from "./upload-sessions.js";

const dir = mkdtempSync(join(tmpdir(), "hangar-upload-sessions-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* chunks(...sizes: number[]): AsyncIterable<Uint8Array> {
  for (const size of sizes) yield new Uint8Array(size);
}

function refusal(err: unknown): string {
  return err instanceof RegistryError ? err.code : String(err);
}

describe("upload sessions", () => {
  it("a stale upload is swept with its file, without another upload starting", async () => {
    const uploads = new UploadSessions(dir, { ttlMs: 100 });
    const stale = await uploads.start("web");
    await uploads.append(stale, chunks(10));
    expect(existsSync(stale.file)).toBe(true);
    const deadline = Date.now() + 5_000;
    while (existsSync(stale.file) && Date.now() < deadline) await sleep(20);
    expect(existsSync(stale.file)).toBe(false);
    expect(() => uploads.get("web", stale.id)).toThrow(/no upload/);
  });

  it("an upload in use is kept", async () => {
    const uploads = new UploadSessions(dir, { ttlMs: 60_000 });
    const session = await uploads.start("web");
    expect(uploads.get("web", session.id).id).toBe(session.id);
  });

  it("refuses a blob over the limit, across chunks and requests, and drops its bytes at once", async () => {
    const uploads = new UploadSessions(dir, { maxBlobBytes: 100 });
    const session = await uploads.start("web");
    await uploads.append(session, chunks(60));
    const err = await uploads.append(session, chunks(30, 30)).catch((e: unknown) => e);
    expect(refusal(err)).toBe("SIZE_INVALID");
    expect((err as Error).message).toMatch(/larger than the registry's limit of 100 bytes/);
    expect(existsSync(session.file)).toBe(false);
    expect(() => uploads.get("web", session.id)).toThrow(/no upload/);
  });

  it("caps a monolithic upload's stream the same way", async () => {
    const uploads = new UploadSessions(dir, { maxBlobBytes: 100 });
    const read = async () => {
      for await (const _ of uploads.capped(chunks(50, 51))) {
        // consumed
      }
    };
    expect(refusal(await read().catch((e: unknown) => e))).toBe("SIZE_INVALID");
    for await (const _ of uploads.capped(chunks(50, 50))) {
      // exactly the limit passes
    }
  });
});
