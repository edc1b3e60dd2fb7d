import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { machineConfigFromApp } from "@hangar/config";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CliError } from "./cli-error.js";
import { withLocalFiles } from "./local-files.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "local-files-"));
  await mkdir(join(dir, "app", "certs"), { recursive: true });
  await writeFile(join(dir, "app", "certs", "ca.pem"), Buffer.from([0, 255, 10]));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("withLocalFiles", () => {
  it("reads each local_path relative to the config file's folder, bytes as they are, into the release's config", async () => {
    const config = {
      files: [
        { guest_path: "/etc/ca.pem", local_path: "certs/ca.pem" },
        { guest_path: "/etc/raw", raw_value: "x" },
      ],
    };
    const released = await withLocalFiles(config, join(dir, "app", "fly.toml"));
    expect(released.files).toEqual([
      { guest_path: "/etc/ca.pem", local_path: "certs/ca.pem", local_content: "AP8K" },
      { guest_path: "/etc/raw", raw_value: "x" },
    ]);
    // What a later machine of the release (a secrets roll, a scale) is made from, without the folder.
    const saved = JSON.parse(JSON.stringify(released));
    expect(machineConfigFromApp(saved, "img").files).toEqual([
      { guest_path: "/etc/ca.pem", raw_value: "AP8K" },
      { guest_path: "/etc/raw", raw_value: "eA==" },
    ]);
  });

  it("stops with what to fix when one cannot be read", async () => {
    const config = { files: [{ guest_path: "/etc/x", local_path: "missing.txt" }] };
    const read = withLocalFiles(config, join(dir, "app", "fly.toml"));
    await expect(read).rejects.toThrow(CliError);
    await expect(read).rejects.toThrow(
      `cannot read ${join(dir, "app", "missing.txt")}, the local_path of [[files]] /etc/x: ENOENT`,
    );
    await expect(read).rejects.toMatchObject({
      hint: "fix local_path in fly.toml (it is relative to the config file's folder)",
    });
  });
});
