import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import {
  KEPT_DECISIONS,
  type ScaleInputs,
  type ScalingCommand,
  type ScalingEvent,
  scalingDecider,
  unfinishedActions,
} from "./scaling.js";

const spec = deciderSpec(scalingDecider);

const inputs: ScaleInputs = {
  panicConcurrency: 200,
  stableConcurrency: 40,
  concurrencyType: "connections",
  softLimit: 20,
  minMachines: 0,
  maxMachines: 20,
  running: 1,
  sleeping: 1,
  panic: true,
  panicWindowS: 6,
  stableWindowS: 60,
  proxies: 1,
  busiestRegion: "local",
  autostop: "stop",
};

const decide = (id: string, actions: { kind: "start" | "create" | "stop"; machineId: string }[]) =>
  ({
    type: "DecideScale",
    decisionId: id,
    decidedAtMs: 1000,
    inputs,
    current: 1,
    desired: 3,
    reason: "panic: 200 connections / soft_limit 20 = 10 > 1 running",
    actions: actions.map((a) => ({ ...a, region: "local" })),
  }) satisfies ScalingCommand;

const decided = (cmd: ReturnType<typeof decide>): ScalingEvent => {
  const { type: _, ...data } = cmd;
  return { type: "ScaleDecided", data };
};

const up = decide("d1", [
  { kind: "start", machineId: "m2" },
  { kind: "create", machineId: "m3" },
]);

describe("scaling decider", () => {
  it("records a decision with its inputs and the machines it acts on", () => {
    spec
      .given([])
      .when(up)
      .then([decided(up)]);
  });

  it("never puts a machine in two unfinished actions, so a clone is never created twice", () => {
    spec
      .given([decided(up)])
      .when(decide("d2", [{ kind: "create", machineId: "m3" }]))
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
    spec
      .given([])
      .when(
        decide("d2", [
          { kind: "create", machineId: "m9" },
          { kind: "start", machineId: "m9" },
        ]),
      )
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
  });

  it("takes a machine again once its action ended, and ignores a repeated decision id", () => {
    const finished: ScalingEvent = {
      type: "ScaleActionFinished",
      data: { decisionId: "d1", machineId: "m3", outcome: "done", message: "", finishedAtMs: 2000 },
    };
    const again = decide("d2", [{ kind: "stop", machineId: "m3" }]);
    spec
      .given([decided(up), finished])
      .when(again)
      .then([decided(again)]);
    spec
      .given([decided(up)])
      .when(up)
      .then([]);
  });

  it("finishes an action once", () => {
    const finish = {
      type: "FinishScaleAction",
      decisionId: "d1",
      machineId: "m2",
      outcome: "done",
      message: "started",
      finishedAtMs: 2000,
    } as const;
    const { type: _, ...data } = finish;
    const finished: ScalingEvent = { type: "ScaleActionFinished", data };
    spec
      .given([decided(up)])
      .when(finish)
      .then([finished]);
    spec
      .given([decided(up), finished])
      .when(finish)
      .then([]);
    spec
      .given([decided(up)])
      .when({ ...finish, machineId: "nope" })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  it("lists unfinished actions and keeps them past the history limit", () => {
    let state = scalingDecider.evolve(scalingDecider.initialState(), decided(up));
    for (let i = 0; i < KEPT_DECISIONS + 5; i++) {
      const d = decide(`n${i}`, []);
      state = scalingDecider.evolve(state, decided(d));
    }
    expect(state.decisions.length).toBe(KEPT_DECISIONS);
    expect(state.total).toBe(KEPT_DECISIONS + 6);
    expect(unfinishedActions(state).map((u) => u.action.machineId)).toEqual(["m2", "m3"]);
  });

  it("enters and leaves panic mode once each", () => {
    const enter = { type: "SetPanic", panic: true, atMs: 5, reason: "10 desired >= 2 x 1 running" } as const;
    const { type: _, ...data } = enter;
    spec
      .given([])
      .when(enter)
      .then([{ type: "ScalePanicChanged", data }]);
    spec
      .given([{ type: "ScalePanicChanged", data }])
      .when(enter)
      .then([]);
  });
});
