import { describe, expect, it } from "vitest";
import { gpusOf } from "./place-machine.js";

describe("gpusOf", () => {
  it("asks for the guest's GPUs, one when only a kind is named, none otherwise", () => {
    expect(gpusOf({ gpus: 2, gpu_kind: "a100-sxm4-80gb" })).toEqual({ gpus: 2, gpu_kind: "a100-sxm4-80gb" });
    expect(gpusOf({ gpu_kind: "l40s" })).toEqual({ gpus: 1, gpu_kind: "l40s" });
    expect(gpusOf({ gpus: 1 })).toEqual({ gpus: 1 });
    expect(gpusOf({ gpus: 0, gpu_kind: null })).toEqual({});
    expect(gpusOf(undefined)).toEqual({});
  });
});
