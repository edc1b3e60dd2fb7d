import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { SystemToolError } from "./errors.js";
import { run } from "./exec.js";

describe("run", () => {
  it("feeds `input` to the program's stdin", async () => {
    const { stdout, timedOut } = await run("cat", [], { input: Readable.from(["a line\n", "another\n"]) });
    expect(stdout).toBe("a line\nanother\n");
    expect(timedOut).toBe(false);
  });

  it("kills a program past `timeoutMs` and says so instead of failing", async () => {
    const result = await run("sleep", ["30"], { timeoutMs: 50 });
    expect(result.timedOut).toBe(true);
  });

  it("rejects a failure with a SystemToolError that has the program's stderr", async () => {
    const failed = run("sh", ["-c", "echo broken >&2; exit 3"]);
    await expect(failed).rejects.toBeInstanceOf(SystemToolError);
    await expect(failed).rejects.toThrow(/exit 3\): broken/);
    await expect(run("sh", ["-c", "exit 3"], { allowFailure: true })).resolves.toMatchObject({ code: 3 });
  });
});
