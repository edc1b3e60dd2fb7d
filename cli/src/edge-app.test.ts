import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CliError } from "./cli-error.js";
import { readEdgeApp } from "./edge-app.js";

const dir = await mkdtemp(join(tmpdir(), "hangar-edge-app-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("readEdgeApp", () => {
  it("refuses a folder that is not there, or a file, saying what to give", async () => {
    await expect(readEdgeApp(join(dir, "missing"))).rejects.toThrow(CliError);
    await expect(readEdgeApp(join(dir, "missing"))).rejects.toThrow(
      /is not there: give the edge app's folder/,
    );
    await writeFile(join(dir, "file.js"), "");
    await expect(readEdgeApp(join(dir, "file.js"))).rejects.toThrow(/is not a folder/);
  });

  it("takes the app's name and limits from its [edge] config", async () => {
    await writeFile(
      join(dir, "hangar.toml"),
      'app = "shop-edge"\n\n[edge]\nentry = "index.js"\ncpu_ms = 80\n',
    );
    const app = await readEdgeApp(dir);
    expect(app).toMatchObject({ app: "shop-edge", entry: "index.js", limits: { cpuMs: 80 } });
  });
});
