import { expect, it } from "vitest";
import { SIGNALS, SignalSchema, StopSignalSchema } from "./signals.js";

it("accepts exactly the spec's signal names", () => {
  expect(SIGNALS).toHaveLength(13);
  for (const name of SIGNALS) expect(SignalSchema.parse(name)).toBe(name);
  for (const bad of ["SIGUSR2", "SIGSTOP", "sigterm", "TERM", ""]) {
    expect(SignalSchema.safeParse(bad).success).toBe(false);
  }
});

it("maps Linux signal numbers to names, as flyctl sends 9 for kill", () => {
  expect(SignalSchema.parse(9)).toBe("SIGKILL");
  expect(SignalSchema.parse(15)).toBe("SIGTERM");
  expect(SignalSchema.safeParse(12).success).toBe(false);
  expect(SignalSchema.safeParse(99).success).toBe(false);
});

it("lets a stop use SIGUSR2 as well", () => {
  expect(StopSignalSchema.parse("SIGUSR2")).toBe("SIGUSR2");
  expect(StopSignalSchema.parse(12)).toBe("SIGUSR2");
  expect(StopSignalSchema.safeParse("SIGSTOP").success).toBe(false);
});
