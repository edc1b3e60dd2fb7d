import { describe, expect, it } from "vitest";
import { crossServiceClones, serviceOf } from "../../scripts/copy-check.js";

const clone = (a: string, b: string) => ({
  firstFile: { name: a, start: 1, end: 6 },
  secondFile: { name: b, start: 10, end: 15 },
});

describe("copy check", () => {
  it("knows which service a file is in, and that a library is none", () => {
    expect(serviceOf("services/host-agent/src/main.ts")).toBe("host-agent");
    expect(serviceOf("libs/service/src/run-service.ts")).toBeUndefined();
  });

  it("flags a block copied between two services, and only that", () => {
    const between = clone("services/monitor/src/main.ts", "services/placement/src/main.ts");
    const within = clone("services/proxy/src/engine/headers.ts", "services/proxy/src/engine/tunnel.ts");
    const withLibrary = clone(
      "libs/oci/src/blob-store.ts",
      "services/gateway/src/registry/upload-sessions.ts",
    );
    expect(crossServiceClones([between, within, withLibrary])).toEqual([between]);
  });
});
