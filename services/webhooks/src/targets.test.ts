import { describe, expect, it } from "vitest";
import { checkTarget, isPrivateAddress, TargetRefusedError } from "./targets.js";

describe("webhook targets", () => {
  it("calls loopback, private, link-local, CGNAT, unique-local and mapped addresses private", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "::",
      "fdaa:0:1::2",
      "fe80::1",
      "::ffff:127.0.0.1",
      "not an address",
    ])
      expect(isPrivateAddress(a), a).toBe(true);
  });

  it("lets public addresses through", () => {
    for (const a of ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "172.32.0.1"])
      expect(isPrivateAddress(a), a).toBe(false);
  });

  it("refuses a private literal unless allowed", async () => {
    await expect(checkTarget(new URL("http://127.0.0.1:9/x"), false)).rejects.toBeInstanceOf(
      TargetRefusedError,
    );
    await expect(checkTarget(new URL("http://[::1]:9/x"), false)).rejects.toThrow(/::1/);
    await expect(checkTarget(new URL("http://127.0.0.1:9/x"), true)).resolves.toBeUndefined();
    await expect(checkTarget(new URL("http://localhost:9/x"), false)).rejects.toThrow(/localhost/);
  });
});
