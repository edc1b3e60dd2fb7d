import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  ScaleDecided: hangar.v1.ScaleDecided,
  ScaleActionFinished: hangar.v1.ScaleActionFinished,
  ScalePanicChanged: hangar.v1.ScalePanicChanged,
};

/** The autoscaler's events for one app. */
export type ScalingEvent = EventOf<typeof messages>;

/** The SCALING stream: one subject per app, `ev.scale.<app>`, the autoscaler's decisions. */
export const scalingStream = defineStream({
  name: "SCALING",
  subjectPrefix: "ev.scale",
  codec: eventCodec(messages),
});

/** What a decision does to a machine. */
export type ScaleActionKind = "start" | "create" | "stop" | "suspend";
/** How an action ended; "" while it is in progress. */
export type ScaleOutcome = "" | "done" | "kept" | "failed";

/** What the autoscaler saw when it decided (the inputs an operator reads to see why). */
export interface ScaleInputs {
  panicConcurrency: number;
  stableConcurrency: number;
  concurrencyType: string;
  softLimit: number;
  minMachines: number;
  maxMachines: number;
  running: number;
  sleeping: number;
  panic: boolean;
  panicWindowS: number;
  stableWindowS: number;
  proxies: number;
  busiestRegion: string;
  autostop: string;
}

export interface ScaleAction {
  kind: ScaleActionKind;
  machineId: string;
  region: string;
  outcome: ScaleOutcome;
  message: string;
}

export interface ScaleDecision {
  decisionId: string;
  decidedAtMs: number;
  inputs: ScaleInputs;
  current: number;
  desired: number;
  reason: string;
  actions: ScaleAction[];
}

/** An app's recent decisions (oldest first; unfinished ones are always kept) and its panic mode. */
export interface ScalingState {
  decisions: ScaleDecision[];
  panic: boolean;
  panicSinceMs: number;
  /** Decisions ever made, so old ones can be dropped from `decisions`. */
  total: number;
}

/** Finished decisions kept per app for `hangar status` and restarts. */
export const KEPT_DECISIONS = 50;

export type ScalingCommand =
  | {
      type: "DecideScale";
      decisionId: string;
      decidedAtMs: number;
      inputs: ScaleInputs;
      current: number;
      desired: number;
      reason: string;
      actions: { kind: ScaleActionKind; machineId: string; region: string }[];
    }
  | {
      type: "FinishScaleAction";
      decisionId: string;
      machineId: string;
      outcome: Exclude<ScaleOutcome, "">;
      message: string;
      finishedAtMs: number;
    }
  | { type: "SetPanic"; panic: boolean; atMs: number; reason: string };

const KINDS: ReadonlySet<string> = new Set(["start", "create", "stop", "suspend"]);

/** Actions of the app's decisions that have not ended yet, with their decision. */
export function unfinishedActions(state: ScalingState): { decision: ScaleDecision; action: ScaleAction }[] {
  const out: { decision: ScaleDecision; action: ScaleAction }[] = [];
  for (const decision of state.decisions) {
    for (const action of decision.actions) if (action.outcome === "") out.push({ decision, action });
  }
  return out;
}

/**
 * An app's autoscaling log. A decision names the machines it acts on (new machines get their id in the
 * decision), and a machine may be in at most one unfinished action: two schedulers, or one restarted
 * half-way, can never act on a machine twice or create the same clone twice.
 */
export const scalingDecider: Decider<ScalingState, ScalingCommand, ScalingEvent> = {
  initialState: () => ({ decisions: [], panic: false, panicSinceMs: 0, total: 0 }),
  decide(command, state) {
    switch (command.type) {
      case "DecideScale": {
        if (state.decisions.some((d) => d.decisionId === command.decisionId)) return [];
        const busy = new Set(unfinishedActions(state).map((u) => u.action.machineId));
        const seen = new Set<string>();
        for (const a of command.actions) {
          if (!KINDS.has(a.kind)) throw new DomainError(`unknown scale action ${a.kind}`, "invalid_argument");
          if (!a.machineId) throw new DomainError("a scale action needs a machine id", "invalid_argument");
          if (busy.has(a.machineId) || seen.has(a.machineId))
            throw new DomainError(
              `machine ${a.machineId} is already in an unfinished scale action`,
              "failed_precondition",
            );
          seen.add(a.machineId);
        }
        const i = command.inputs;
        return [
          {
            type: "ScaleDecided",
            data: {
              decisionId: command.decisionId,
              decidedAtMs: command.decidedAtMs,
              inputs: { ...i },
              current: command.current,
              desired: command.desired,
              reason: command.reason,
              actions: command.actions.map((a) => ({
                kind: a.kind,
                machineId: a.machineId,
                region: a.region,
              })),
            },
          },
        ];
      }
      case "FinishScaleAction": {
        const decision = state.decisions.find((d) => d.decisionId === command.decisionId);
        const action = decision?.actions.find((a) => a.machineId === command.machineId);
        if (!action)
          throw new DomainError(
            `decision ${command.decisionId} has no action on machine ${command.machineId}`,
            "not_found",
          );
        if (action.outcome !== "") return [];
        return [
          {
            type: "ScaleActionFinished",
            data: {
              decisionId: command.decisionId,
              machineId: command.machineId,
              outcome: command.outcome,
              message: command.message,
              finishedAtMs: command.finishedAtMs,
            },
          },
        ];
      }
      case "SetPanic":
        if (state.panic === command.panic) return [];
        return [
          {
            type: "ScalePanicChanged",
            data: { panic: command.panic, atMs: command.atMs, reason: command.reason },
          },
        ];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case "ScaleDecided": {
        const d = event.data;
        const i = d.inputs ?? {};
        const decision: ScaleDecision = {
          decisionId: d.decisionId ?? "",
          decidedAtMs: Number(d.decidedAtMs ?? 0),
          inputs: {
            panicConcurrency: i.panicConcurrency ?? 0,
            stableConcurrency: i.stableConcurrency ?? 0,
            concurrencyType: i.concurrencyType ?? "",
            softLimit: i.softLimit ?? 0,
            minMachines: i.minMachines ?? 0,
            maxMachines: i.maxMachines ?? 0,
            running: i.running ?? 0,
            sleeping: i.sleeping ?? 0,
            panic: i.panic ?? false,
            panicWindowS: i.panicWindowS ?? 0,
            stableWindowS: i.stableWindowS ?? 0,
            proxies: i.proxies ?? 0,
            busiestRegion: i.busiestRegion ?? "",
            autostop: i.autostop ?? "",
          },
          current: d.current ?? 0,
          desired: d.desired ?? 0,
          reason: d.reason ?? "",
          actions: (d.actions ?? []).map((a) => ({
            kind: (a.kind ?? "start") as ScaleActionKind,
            machineId: a.machineId ?? "",
            region: a.region ?? "",
            outcome: "",
            message: "",
          })),
        };
        return { ...state, decisions: trim([...state.decisions, decision]), total: state.total + 1 };
      }
      case "ScaleActionFinished": {
        const d = event.data;
        const decisions = state.decisions.map((x) =>
          x.decisionId !== d.decisionId
            ? x
            : {
                ...x,
                actions: x.actions.map((a) =>
                  a.machineId !== d.machineId
                    ? a
                    : { ...a, outcome: (d.outcome ?? "done") as ScaleOutcome, message: d.message ?? "" },
                ),
              },
        );
        return { ...state, decisions: trim(decisions) };
      }
      case "ScalePanicChanged":
        return { ...state, panic: event.data.panic ?? false, panicSinceMs: Number(event.data.atMs ?? 0) };
    }
  },
};

// Old finished decisions go; a decision with an action in progress stays whatever its age.
function trim(decisions: ScaleDecision[]): ScaleDecision[] {
  if (decisions.length <= KEPT_DECISIONS) return decisions;
  let drop = decisions.length - KEPT_DECISIONS;
  return decisions.filter((d) => {
    if (drop > 0 && d.actions.every((a) => a.outcome !== "")) {
      drop--;
      return false;
    }
    return true;
  });
}
