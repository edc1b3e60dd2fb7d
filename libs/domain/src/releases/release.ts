import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  ReleaseCreated: hangar.v1.ReleaseCreated,
  ReleaseSucceeded: hangar.v1.ReleaseSucceeded,
  ReleaseFailed: hangar.v1.ReleaseFailed,
};

/** An app's release events. */
export type ReleaseEvent = EventOf<typeof messages>;

/** The RELEASES stream: one subject per app, `ev.release.<app>`, holding every version. */
export const releasesStream = defineStream({
  name: "RELEASES",
  subjectPrefix: "ev.release",
  codec: eventCodec(messages),
});

export type ReleaseStatus = "pending" | "succeeded" | "failed";

export interface Release {
  version: number;
  releaseId: string;
  imageRef: string;
  buildId: string;
  configJson: string;
  strategy: string;
  description: string;
  status: ReleaseStatus;
  reason: string;
  machineIds: string[];
}

/** An app's releases, oldest first. */
export interface ReleasesState {
  releases: Release[];
}

export type ReleaseCommand =
  | {
      type: "CreateRelease";
      releaseId: string;
      imageRef: string;
      buildId?: string;
      configJson: string;
      strategy?: string;
      description?: string;
    }
  | { type: "SucceedRelease"; version: number; machineIds: string[] }
  | { type: "FailRelease"; version: number; reason: string };

/** The release the app serves: the newest that succeeded. */
export function currentRelease(state: ReleasesState): Release | undefined {
  return state.releases.findLast((r) => r.status === "succeeded");
}

function pending(state: ReleasesState, version: number): Release {
  const r = state.releases.find((x) => x.version === version);
  if (!r) throw new DomainError(`release v${version} not found`, "not_found");
  if (r.status !== "pending")
    throw new DomainError(`release v${version} already ${r.status}`, "failed_precondition");
  return r;
}

/**
 * An app's releases: each gets the next version; a pending release ends once, succeeded or failed.
 * A newer release may start while an older one is pending; the older one can still end.
 */
export const releaseDecider: Decider<ReleasesState, ReleaseCommand, ReleaseEvent> = {
  initialState: () => ({ releases: [] }),
  decide(command, state) {
    switch (command.type) {
      case "CreateRelease":
        if (!command.imageRef) throw new DomainError("a release needs an image", "invalid_argument");
        return [
          {
            type: "ReleaseCreated",
            data: {
              version: (state.releases.at(-1)?.version ?? 0) + 1,
              releaseId: command.releaseId,
              imageRef: command.imageRef,
              buildId: command.buildId ?? "",
              configJson: command.configJson,
              strategy: command.strategy ?? "immediate",
              description: command.description ?? "",
            },
          },
        ];
      case "SucceedRelease":
        pending(state, command.version);
        return [
          { type: "ReleaseSucceeded", data: { version: command.version, machineIds: command.machineIds } },
        ];
      case "FailRelease":
        pending(state, command.version);
        return [{ type: "ReleaseFailed", data: { version: command.version, reason: command.reason } }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case "ReleaseCreated": {
        const d = event.data;
        const release: Release = {
          version: d.version ?? 0,
          releaseId: d.releaseId ?? "",
          imageRef: d.imageRef ?? "",
          buildId: d.buildId ?? "",
          configJson: d.configJson ?? "",
          strategy: d.strategy ?? "",
          description: d.description ?? "",
          status: "pending",
          reason: "",
          machineIds: [],
        };
        return { releases: [...state.releases, release] };
      }
      case "ReleaseSucceeded":
      case "ReleaseFailed": {
        const d = event.data;
        return {
          releases: state.releases.map((r) =>
            r.version !== d.version
              ? r
              : event.type === "ReleaseSucceeded"
                ? { ...r, status: "succeeded", machineIds: event.data.machineIds ?? [] }
                : { ...r, status: "failed", reason: event.data.reason ?? "" },
          ),
        };
      }
    }
  },
};
