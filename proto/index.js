// numbers.js must be evaluated before the generated module computes its defaults.
import "./numbers.js";

export * from "./gen/hangar.js";
