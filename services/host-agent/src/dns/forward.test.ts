import { describe, expect, it } from "vitest";
import { nameserversOf } from "./forward.js";

describe("nameserversOf", () => {
  it("lists a resolv.conf's nameservers, without the resolver itself or what is not an address", () => {
    const conf =
      "# generated\nsearch example\nnameserver 10.0.0.2\nnameserver fdaa::3\nnameserver fe80::1%eth0\nnameserver bogus\n";
    expect(nameserversOf(conf, "fdaa::3")).toEqual([
      { address: "10.0.0.2", port: 53 },
      { address: "fe80::1%eth0", port: 53 },
    ]);
  });
});
