import { lookup } from "node:dns";
import { describe, expect, it } from "vitest";
import { isPrivateAddress, publicOnlyLookup } from "./private-addresses.js";

describe("private addresses", () => {
  it("calls loopback, private, link-local, CGNAT, unique-local, multicast and mapped addresses private", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.20.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
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
    for (const a of ["93.184.216.34", "8.8.8.8", "2606:4700::6810:1", "::ffff:8.8.8.8", "172.32.0.1"])
      expect(isPrivateAddress(a), a).toBe(false);
  });

  it("refuses a name that resolves to a private address, with the caller's error", async () => {
    const guarded = publicOnlyLookup((host, address) => new Error(`refused ${host} at ${address}`));
    const err = await new Promise<Error | null>((resolve) =>
      guarded("localhost", { all: true }, (e) => resolve(e as Error | null)),
    );
    expect(err?.message).toMatch(/^refused localhost at (127\.0\.0\.1|::1)$/);
    // The same name through the plain lookup resolves: the guard is what refused it.
    await new Promise<void>((resolve, reject) => lookup("localhost", (e) => (e ? reject(e) : resolve())));
  });

  it("judges addresses by the caller's rule when given one", async () => {
    const judged: string[] = [];
    const guarded = publicOnlyLookup(
      (host, address) => new Error(`refused ${host} at ${address}`),
      (address) => {
        judged.push(address);
        return false;
      },
    );
    const err = await new Promise<Error | null>((resolve) =>
      guarded("localhost", { all: true }, (e) => resolve(e as Error | null)),
    );
    expect(err).toBeNull();
    expect(judged.length).toBeGreaterThan(0);
  });
});
