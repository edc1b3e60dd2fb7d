import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar, startHangar } from "./run-cli.js";

// The real CLI on the four example edge apps: `hangar edge test` runs each app's own tests against its
// bundle in the edge runtime (the balancer's include acceptance 2: one origin of three failing half its
// requests under load), and `hangar edge dev` serves an app and reloads it on change.

const examples = fileURLToPath(new URL("../../examples/", import.meta.url));
// isolated-vm needs it in every process that makes an isolate (libs/edge's node-flags.ts).
const env = { NODE_OPTIONS: "--no-node-snapshot" };

interface TestRun {
  app: string;
  passed: number;
  failed: number;
  tests: { name: string; ok: boolean; error?: string }[];
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "hangar-edge-cli-"));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("hangar edge test", () => {
  it("passes each example's tests, with --json", { timeout: 240_000 }, async () => {
    const apps = ["edge-hello", "edge-router", "edge-origin", "edge-balancer"];
    // One after another: four CLIs at once on two busy cores is a load test of the machine, not of the apps.
    const runs = [];
    for (const app of apps) {
      runs.push(await runHangar(["edge", "test", join(examples, app), "--json"], { env, timeoutMs: 60_000 }));
    }
    runs.forEach((run, i) => {
      expect(run.stderr.includes("FAIL") ? run.stderr : "", apps[i]).toBe("");
      expect(run.code, `${apps[i]}: ${run.stdout}${run.stderr}`).toBe(0);
      const result = JSON.parse(run.stdout) as TestRun;
      expect(result.app).toBe(apps[i]);
      expect(result.failed).toBe(0);
      expect(result.passed).toBeGreaterThan(0);
    });
    const balancer = JSON.parse(runs[3]?.stdout ?? "") as TestRun;
    expect(balancer.tests.map((t) => t.name)).toContain(
      "one origin of three failing 50%: under 1% of 2,000 requests fail and its share falls",
    );
  });

  it("fails with exit status 1 and says which test failed and why", async () => {
    const dir = join(tmp, "failing");
    await cp(join(examples, "edge-hello"), dir, { recursive: true });
    await writeFile(
      join(dir, "wrong.test.js"),
      'import assert from "node:assert/strict";\n' +
        'test("expects another greeting", async () => {\n' +
        '  assert.equal(await (await dispatch("/")).text(), "Goodbye\\n");\n' +
        "});\n",
    );
    const run = await runHangar(["edge", "test", dir], { env, timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/ok {3}index\.test\.js > answers Hello World/);
    expect(run.stdout).toMatch(/FAIL wrong\.test\.js > expects another greeting/);
    expect(run.stdout).toContain("1 passed, 1 failed");
    // The whole error under the test's line; its first line again at the end, on stderr.
    expect(run.stdout).toContain("Goodbye");
    expect(run.stderr).toMatch(/failed: wrong\.test\.js > expects another greeting: AssertionError/);
  });
});

describe("hangar edge dev", () => {
  it("serves the app, reloads it on change, and keeps the last good bundle when a change does not build", async () => {
    const dir = join(tmp, "dev");
    await cp(join(examples, "edge-hello"), dir, { recursive: true });
    const dev = startHangar(["edge", "dev", dir, "--port", "0"], { env, timeoutMs: 90_000 });
    try {
      const url = await until(() => /Serving edge-hello on (http:\S+)/.exec(dev.output().stdout)?.[1], dev);
      const get = async () => {
        const res = await fetch(url);
        return `${res.status} ${await res.text()}`;
      };
      expect(await get()).toBe("200 Hello World\n");

      const index = join(dir, "index.js");
      await writeFile(index, (await readFile(index, "utf8")).replace("Hello World", "Hello again"));
      await until(async () => ((await get()) === "200 Hello again\n" ? true : undefined), dev);

      await writeFile(index, "fly.http.respondWith(() => new Response(\n");
      await until(
        () => (dev.output().stderr.includes("still serving the last good bundle") ? true : undefined),
        dev,
      );
      expect(dev.output().stderr).toMatch(/did not build/);
      expect(await get()).toBe("200 Hello again\n");
    } finally {
      dev.child.kill("SIGINT");
    }
    const exited = await dev.exited;
    expect(exited.code).toBe(0);
  });
});

/** Polls `probe` until it gives a value (at most 30 s); fails early with the CLI's output if the CLI exits. */
async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  cli: ReturnType<typeof startHangar>,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    const out = cli.output();
    if (out.code !== null || Date.now() > deadline) {
      throw new Error(
        `hangar edge dev: ${out.code === null ? "timed out" : `exited ${out.code}`}\n${out.stdout}${out.stderr}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
