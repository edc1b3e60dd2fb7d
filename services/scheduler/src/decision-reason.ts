/** What made the autoscaler decide, as a metric label: a few fixed values, never the reason's numbers. */
export type DecisionCause = "panic" | "scale_up" | "scale_down" | "below_min" | "above_max";

/** The cause of a decision, read from the start of its reason (Autoscaler's assess writes them). */
export function decisionCause(reason: string): DecisionCause {
  if (reason.startsWith("panic")) return "panic";
  if (reason.startsWith("scale up")) return "scale_up";
  if (reason.startsWith("scale down")) return "scale_down";
  return reason.includes("> max_machines_running") ? "above_max" : "below_min";
}
