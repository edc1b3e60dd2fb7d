import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createLayer } from "../layer.js";
import { cachedLayers } from "./host-cache.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-host-cache-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A maker of one small layer that counts its runs. */
function counting(content: string) {
  const made = { runs: 0 };
  const make = async (work: string) => {
    made.runs++;
    await writeFile(join(work, "file"), content);
    await new Promise((r) => setTimeout(r, 50));
    return [
      {
        // Clamped times, as the base makers' layers: a second make gives the same bytes even when it
        // runs in another second than the first (the damaged-layer test compares their digests).
        layer: await createLayer(work, join(work, "..", `${made.runs}.tar.gz`), {
          skip: (p) => p.endsWith(".tar.gz"),
          mtime: new Date(0),
        }),
        extra: { content },
      },
    ];
  };
  return { made, make };
}

it("makes a layer once for concurrent callers and reuses it after", async () => {
  const { made, make } = counting("one");
  const lines: string[] = [];
  const [a, b] = await Promise.all([
    cachedLayers(dir, ["one"], make, (l) => lines.push(l)),
    cachedLayers(dir, ["one"], make, (l) => lines.push(l)),
  ]);
  expect(a[0]?.digest).toBe(b[0]?.digest);
  const again = await cachedLayers(dir, ["one"], make, (l) => lines.push(l));
  expect(again[0]).toMatchObject({
    digest: a[0]?.digest,
    extra: { content: "one" },
    file: join(dir, "one.tar.gz"),
  });
  expect(made.runs).toBe(1);
  expect(lines).toEqual([]);
});

it("makes a damaged cached layer again, and says so", async () => {
  const { made, make } = counting("two");
  const [first] = await cachedLayers(dir, ["two"], make, () => {});
  await writeFile(join(dir, "two.tar.gz"), "not the layer");
  const lines: string[] = [];
  const [second] = await cachedLayers(dir, ["two"], make, (l) => lines.push(l));
  expect(made.runs).toBe(2);
  expect(second?.digest).toBe(first?.digest);
  expect(lines.join("\n")).toMatch(
    /two\.tar\.gz has sha256 sha256:[0-9a-f]{64}, not the sha256:[0-9a-f]{64} it was made with/,
  );
  expect((await readFile(join(dir, "two.tar.gz"))).length).toBe(second?.size);
});

it("takes over the lock of a maker that is gone", async () => {
  await writeFile(join(dir, "three.lock"), `${hostname()} 999999999`);
  const { made, make } = counting("three");
  await cachedLayers(dir, ["three"], make, () => {});
  expect(made.runs).toBe(1);
});
