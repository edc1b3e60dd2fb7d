import { isPrivateAddress } from "@hangar/service";
import { describe, expect, it } from "vitest";

describe("isPrivateAddress", () => {
  it("refuses the host's and private networks' addresses to ADD, and lets public ones through", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ["::1", "fdaa:0:1::2", "fe80::1", "::ffff:127.0.0.1", "not-an-ip"]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ["104.16.0.35", "151.101.1.1", "2606:4700::6810:1", "8.8.8.8"]) {
      expect(isPrivateAddress(a), a).toBe(false);
    }
  });
});
