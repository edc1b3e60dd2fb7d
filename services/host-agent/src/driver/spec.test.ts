import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { validateRunSpec } from "./spec.js";
import type { MachineRunSpec } from "./types.js";

const spec = (volumes: MachineRunSpec["volumes"]): MachineRunSpec => ({
  machineId: "m1",
  app: "web",
  region: "local",
  imageRef: "dir:/srv",
  instanceId: "v1",
  cmd: ["true"],
  cwd: tmpdir(),
  env: {},
  ...(volumes ? { volumes } : {}),
});

describe("validateRunSpec volumes", () => {
  it("accepts a volume id mounted at an absolute path", async () => {
    await expect(
      validateRunSpec(spec([{ volume: "vol_0123456789abcdef", path: "/data" }])),
    ).resolves.toBeUndefined();
  });

  it("refuses what is not a volume id (it names a file on the host) and a path that is not a folder of its own", async () => {
    await expect(validateRunSpec(spec([{ volume: "../../etc", path: "/data" }]))).rejects.toThrow(
      /volume "..\/..\/etc" is not a volume id/,
    );
    for (const path of ["data", "/"])
      await expect(validateRunSpec(spec([{ volume: "vol_0123456789abcdef", path }]))).rejects.toThrow(
        /volume mount path/,
      );
  });
});
