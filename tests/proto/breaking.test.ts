// The wire-compatibility check really catches breaking proto changes: a scratch git repository
// with a copy of proto/, then scripts/proto-breaking.sh run against changes to it.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
let repo: string;
const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, stdio: "pipe" });
const check = () => spawnSync("bash", ["scripts/proto-breaking.sh"], { cwd: repo, encoding: "utf8" });
const machines = () => join(repo, "proto/hangar/v1/machines.proto");

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), "hangar-proto-"));
  cpSync(join(root, "proto/hangar"), join(repo, "proto/hangar"), { recursive: true });
  cpSync(join(root, "proto/buf.yaml"), join(repo, "proto/buf.yaml"));
  cpSync(join(root, "scripts/proto-breaking.sh"), join(repo, "scripts/proto-breaking.sh"));
  symlinkSync(join(root, "node_modules"), join(repo, "node_modules"));
  writeFileSync(join(repo, ".gitignore"), "node_modules\n");
  git("init", "-q");
  git("-c", "user.email=t@t", "-c", "user.name=t", "add", "-A");
  git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base");
});
afterEach(() => rmSync(repo, { recursive: true, force: true }));

describe("proto wire-compatibility check", () => {
  it("accepts a new field", () => {
    const p = machines();
    writeFileSync(
      p,
      readFileSync(p, "utf8").replace(
        "bool skip_launch = 7;",
        "bool skip_launch = 7;\n  string image_ref = 99;",
      ),
    );
    const r = check();
    expect(r.stderr + r.stdout).toContain("wire-compatible with HEAD");
    expect(r.status).toBe(0);
  });

  it("refuses a field whose type changed", () => {
    const p = machines();
    writeFileSync(p, readFileSync(p, "utf8").replace("int32 pid = 2;", "string pid = 2;"));
    const r = check();
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/MachineStarted.*pid|pid.*type/s);
  });

  it("refuses a field removed without reserving its number", () => {
    const p = machines();
    writeFileSync(p, readFileSync(p, "utf8").replace("  bool skip_launch = 7;\n", ""));
    const r = check();
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/deleted|7/);
  });
});
