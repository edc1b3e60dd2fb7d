import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  BuildRequested: hangar.v1.BuildRequested,
  BuildStarted: hangar.v1.BuildStarted,
  BuildStepFinished: hangar.v1.BuildStepFinished,
  BuildSucceeded: hangar.v1.BuildSucceeded,
  BuildFailed: hangar.v1.BuildFailed,
};

/** A build's events, as its decider sees them. */
export type BuildEvent = EventOf<typeof messages>;

/** The BUILDS stream: one subject per build, `ev.build.<app>.<build_id>`. */
export const buildsStream = defineStream({
  name: "BUILDS",
  subjectPrefix: "ev.build",
  codec: eventCodec(messages),
});

/**
 * The Object Store bucket of build contexts: the gateway writes one tar per build, named by the build
 * id, and the builder reads it. Part of the build contract, like the stream.
 */
export const BUILD_CONTEXTS_BUCKET = "hangar-build-contexts";

/** The aggregate id of a build: `<app>.<build_id>`. */
export function buildAggregateId(app: string, buildId: string): string {
  return `${app}.${buildId}`;
}

export type BuildRequest = hangar.v1.IBuildRequested;

export type BuildStatus = "requested" | "running" | "succeeded" | "failed";

export type BuildState =
  | { status: "absent" }
  | {
      status: BuildStatus;
      request: BuildRequest;
      builderId: string;
      steps: hangar.v1.IBuildStepFinished[];
      result?: hangar.v1.IBuildSucceeded;
      failure?: hangar.v1.IBuildFailed;
    };

export type BuildCommand =
  | { type: "RequestBuild"; request: BuildRequest }
  | { type: "StartBuild"; builderId: string }
  | { type: "FinishStep"; step: hangar.v1.IBuildStepFinished }
  | { type: "SucceedBuild"; result: hangar.v1.IBuildSucceeded }
  | { type: "FailBuild"; failure: hangar.v1.IBuildFailed };

/** True once a build has succeeded or failed. */
export function buildIsOver(state: BuildState): boolean {
  return state.status === "succeeded" || state.status === "failed";
}

/**
 * The build aggregate: requested once, taken by one builder (the expected-sequence append makes two
 * builders racing for it conflict, and the loser sees it running), then steps, then one outcome.
 */
export const buildDecider: Decider<BuildState, BuildCommand, BuildEvent> = {
  initialState: () => ({ status: "absent" }),
  decide(command, state) {
    if (command.type === "RequestBuild") {
      if (state.status !== "absent") throw new DomainError("build already requested", "already_exists");
      if (!command.request.buildId || !command.request.app || !command.request.contextObject) {
        throw new DomainError("a build needs an id, an app and a context", "invalid_argument");
      }
      return [{ type: "BuildRequested", data: command.request }];
    }
    if (state.status === "absent") throw new DomainError("build not found", "not_found");
    if (buildIsOver(state)) throw new DomainError(`build already ${state.status}`, "failed_precondition");
    switch (command.type) {
      case "StartBuild":
        if (state.status === "running")
          throw new DomainError(`build already taken by ${state.builderId}`, "failed_precondition");
        return [{ type: "BuildStarted", data: { builderId: command.builderId } }];
      case "FinishStep":
        if (state.status !== "running") throw new DomainError("build not started", "failed_precondition");
        return [{ type: "BuildStepFinished", data: command.step }];
      case "SucceedBuild":
        if (state.status !== "running") throw new DomainError("build not started", "failed_precondition");
        return [{ type: "BuildSucceeded", data: command.result }];
      case "FailBuild":
        // A build can fail before a builder took it (e.g. its context is unreadable).
        return [{ type: "BuildFailed", data: command.failure }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case "BuildRequested":
        return { status: "requested", request: event.data, builderId: "", steps: [] };
      case "BuildStarted":
        return state.status === "absent"
          ? state
          : { ...state, status: "running", builderId: event.data.builderId ?? "" };
      case "BuildStepFinished":
        return state.status === "absent" ? state : { ...state, steps: [...state.steps, event.data] };
      case "BuildSucceeded":
        return state.status === "absent" ? state : { ...state, status: "succeeded", result: event.data };
      case "BuildFailed":
        return state.status === "absent" ? state : { ...state, status: "failed", failure: event.data };
    }
  },
};
