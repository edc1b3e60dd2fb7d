import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { READ_AHEAD_FILE_BYTES, readAhead, walkTree, walkTreeLoaded } from "./tree-walk.js";

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tree-walk-"));
  await mkdir(join(root, "b/d"), { recursive: true });
  await mkdir(join(root, "a"));
  await writeFile(join(root, "b/z"), "z");
  await writeFile(join(root, "b/d/x"), "x");
  await writeFile(join(root, "a/big"), Buffer.alloc(READ_AHEAD_FILE_BYTES + 1));
  await writeFile(join(root, "c"), "");
  await symlink("b", join(root, "link"));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("walkTree", () => {
  it("gives each folder's entries sorted by name, a folder before what is in it, links not followed", async () => {
    const rels = (await all(walkTree(root))).map((e) => `${e.rel}${e.isDirectory ? "/" : ""}`);
    expect(rels).toEqual(["a/", "a/big", "b/", "b/d/", "b/d/x", "b/z", "c", "link"]);
  });

  it("leaves out a skipped folder with what is under it", async () => {
    const rels = (await all(walkTree(root, (e) => e.rel === "b/d"))).map((e) => e.rel);
    expect(rels).toEqual(["a", "a/big", "b", "b/z", "c", "link"]);
  });
});

describe("walkTreeLoaded", () => {
  it("reads small files whole and leaves large and empty ones to be streamed", async () => {
    const byRel = new Map((await all(walkTreeLoaded(root, { readFiles: true }))).map((e) => [e.rel, e]));
    expect(byRel.get("b/d/x")?.content?.toString()).toBe("x");
    expect(byRel.get("a/big")?.content).toBeUndefined();
    expect(byRel.get("a/big")?.st.size).toBe(READ_AHEAD_FILE_BYTES + 1);
    expect(byRel.get("c")?.content).toBeUndefined();
    expect(byRel.get("link")?.st.isSymbolicLink()).toBe(true);
  });
});

describe("readAhead", () => {
  async function* numbers(n: number): AsyncGenerator<number> {
    for (let i = 0; i < n; i++) yield i;
  }
  const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("keeps up to `ahead` loads in flight and yields in the items' order, whatever order they end in", async () => {
    let inFlight = 0;
    let most = 0;
    const out = await all(
      readAhead(numbers(20), 4, async (i) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await later((20 - i) % 5);
        inFlight--;
        return i * 10;
      }),
    );
    expect(out).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
    expect(most).toBe(4);
  });

  it("fails in turn with a failed load, and waits for the loads under way before it ends", async () => {
    const settled: number[] = [];
    const run = all(
      readAhead(numbers(10), 3, async (i) => {
        await later(i === 1 ? 1 : 20);
        settled.push(i);
        if (i === 1) throw new Error("load 1 failed");
        return i;
      }),
    );
    await expect(run).rejects.toThrow("load 1 failed");
    // 0 was yielded; 1 failed; 2 and 3 were in flight when it did, and ended before the iteration did.
    expect(settled.sort()).toEqual([0, 1, 2, 3]);
  });
});
