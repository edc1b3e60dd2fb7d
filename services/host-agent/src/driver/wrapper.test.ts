import { describe, expect, it } from "vitest";
import { decodeWaitStatus, wrapperArgs } from "./wrapper.js";

describe("decodeWaitStatus", () => {
  it("reads a normal exit", () => {
    expect(decodeWaitStatus(0)).toEqual({ exitCode: 0 });
    expect(decodeWaitStatus(3 << 8)).toEqual({ exitCode: 3 });
    expect(decodeWaitStatus(130 << 8)).toEqual({ exitCode: 130 });
  });

  it("reads a death by signal as 128+n with the signal's name", () => {
    expect(decodeWaitStatus(15)).toEqual({ exitCode: 143, signal: "SIGTERM" });
    expect(decodeWaitStatus(9)).toEqual({ exitCode: 137, signal: "SIGKILL" });
    // 0x80 is the core-dump bit.
    expect(decodeWaitStatus(0x80 | 6)).toEqual({ exitCode: 134, signal: "SIGABRT" });
  });
});

describe("wrapperArgs", () => {
  it("passes the exit file and the argv after --, untouched", () => {
    const args = wrapperArgs("/state/m1/exit", ["node", "-e", "x", "--", "-y"]);
    expect(args.slice(2)).toEqual(["--", "/state/m1/exit", "node", "-e", "x", "--", "-y"]);
    expect(args[0]).toBe("-e");
  });

  it("leaves uncatchable and non-terminating signals at their default", () => {
    const script = wrapperArgs("/x", ["true"])[1] ?? "";
    const caught = /qw\(([^)]*)\)/.exec(script)?.[1]?.split(" ") ?? [];
    expect(caught).toEqual(
      expect.arrayContaining(["TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "ALRM", "XCPU"]),
    );
    for (const name of ["KILL", "STOP", "CHLD", "CONT", "TSTP"]) expect(caught).not.toContain(name);
  });
});
