import { describe, expect, it } from "vitest";
import { guestOfSize, sizeName } from "./machine-update.js";

describe("VM sizes of machine update and scale vm", () => {
  it("names a guest's size as flyctl does", () => {
    expect(sizeName({ cpu_kind: "shared", cpus: 2, memory_mb: 512 })).toBe("shared-cpu-2x");
    expect(sizeName({ cpu_kind: "performance", cpus: 4, memory_mb: 8192 })).toBe("performance-4x");
    expect(sizeName({ cpu_kind: "performance", cpus: 8, gpu_kind: "l40s" })).toBe("l40s");
    expect(sizeName(undefined)).toBe("shared-cpu-1x");
  });

  it("gives the size's guest, with --memory, keeping other guest fields and dropping a GPU the size lacks", () => {
    const current = {
      cpu_kind: "performance",
      cpus: 8,
      memory_mb: 32768,
      gpus: 1,
      gpu_kind: "a10",
      kernel_args: ["quiet"],
    };
    expect(guestOfSize("shared-cpu-2x", undefined, current)).toEqual({
      cpu_kind: "shared",
      cpus: 2,
      memory_mb: 512,
      kernel_args: ["quiet"],
    });
    expect(guestOfSize("performance-1x", 4096)).toEqual({
      cpu_kind: "performance",
      cpus: 1,
      memory_mb: 4096,
    });
    expect(guestOfSize(undefined, 1024, { cpu_kind: "shared", cpus: 1, memory_mb: 256 })).toEqual({
      cpu_kind: "shared",
      cpus: 1,
      memory_mb: 1024,
    });
    expect(guestOfSize("l40s", undefined)).toMatchObject({ gpus: 1, gpu_kind: "l40s" });
  });

  it("refuses a size flyctl does not know, listing the sizes", () => {
    expect(() => guestOfSize("huge-1x", undefined)).toThrow("huge-1x is not a VM size");
    try {
      guestOfSize("huge-1x", undefined);
    } catch (err) {
      expect((err as { hint?: string }).hint).toMatch(
        /^use one of: shared-cpu-1x, shared-cpu-2x,.* performance-16x,/,
      );
    }
  });
});
