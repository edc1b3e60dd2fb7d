import { describe, expect, it } from "vitest";
import { decisionCause } from "./decision-reason.js";

describe("decisionCause", () => {
  it.each([
    ["panic: max 200 connections over 2 s / soft_limit 20 = 10 > 1 running", "panic"],
    ["scale up: max 45 connections over 6 s / soft_limit 20 = 3 > 2 running", "scale_up"],
    [
      "scale up: max 400 connections over 6 s / soft_limit 20 = 20 > 2 running; capped at max_machines_running 12",
      "scale_up",
    ],
    ["scale down: mean 0 connections over 60 s / soft_limit 20 = 0 < 3 running", "scale_down"],
    [
      "scale down: mean 0 connections over 60 s / soft_limit 20 = 0 < 3 running; held at min_machines_running 1",
      "scale_down",
    ],
    ["1 running < min_machines_running 2", "below_min"],
    ["14 running > max_machines_running 12", "above_max"],
  ])("%s -> %s", (reason, cause) => {
    expect(decisionCause(reason)).toBe(cause);
  });
});
