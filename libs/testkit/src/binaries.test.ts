import { existsSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { findBinary, MissingBinaryError } from "./mod.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("findBinary", () => {
  it("returns the absolute path of a program on PATH", () => {
    expect(findBinary("nats-server")).toMatch(/^\/.*\/nats-server$/);
  });

  it("throws MissingBinaryError naming the program when it is nowhere", () => {
    const error = catchError(() => findBinary("hangar-no-such-binary"));
    expect(error).toBeInstanceOf(MissingBinaryError);
    expect(error).toMatchObject({
      name: "MissingBinaryError",
      code: "MISSING_BINARY",
      binary: "hangar-no-such-binary",
    });
    expect(error.message).toMatch(/^hangar-no-such-binary not found on PATH\. Install it: /);
  });

  it("says how to install nats-server", () => {
    vi.stubEnv("PATH", "");
    expect(catchError(() => findBinary("nats-server")).message).toBe(
      "nats-server not found on PATH. Install it: apt-get install -y nats-server (Debian/Ubuntu) or brew install nats-server (macOS)",
    );
  });

  it.skipIf(!existsSync("/usr/lib/postgresql"))("finds Debian's postgres tools off PATH", () => {
    vi.stubEnv("PATH", "");
    expect(findBinary("pg_isready")).toMatch(/^\/usr\/lib\/postgresql\/[^/]+\/bin\/pg_isready$/);
  });
});

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}
