import { describe, expect, it } from "vitest";
import { checkTarget, refusedLiteral, TargetRefusedError } from "./targets.js";

describe("webhook targets", () => {
  it("refuses a private literal or name unless allowed", async () => {
    await expect(checkTarget(new URL("http://127.0.0.1:9/x"), false)).rejects.toBeInstanceOf(
      TargetRefusedError,
    );
    await expect(checkTarget(new URL("http://[::1]:9/x"), false)).rejects.toThrow(/::1/);
    await expect(checkTarget(new URL("http://localhost:9/x"), false)).rejects.toThrow(/localhost/);
    await expect(checkTarget(new URL("http://127.0.0.1:9/x"), true)).resolves.toBeUndefined();
    await expect(checkTarget(new URL("http://93.184.216.34/x"), false)).resolves.toBeUndefined();
  });

  it("refuses a private literal at send time unless allowed", () => {
    expect(refusedLiteral("169.254.169.254", false)?.message).toMatch(/169\.254\.169\.254/);
    expect(refusedLiteral("169.254.169.254", true)).toBeUndefined();
    expect(refusedLiteral("example.com", false)).toBeUndefined();
  });
});
