import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  ReleaseCreated: hangar.v1.ReleaseCreated,
  ReleaseStarted: hangar.v1.ReleaseStarted,
  ReleaseCommandStarted: hangar.v1.ReleaseCommandStarted,
  ReleaseCommandFinished: hangar.v1.ReleaseCommandFinished,
  ReleaseRollingBack: hangar.v1.ReleaseRollingBack,
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

/**
 * `pending` until it ends or the orchestrator takes it on; `running` while the orchestrator rolls it
 * out; `rolling_back` while it brings the previous release back after a failure; then `succeeded` or
 * `failed` (with `rolledBackTo` when the previous release was brought back).
 */
export type ReleaseStatus = "pending" | "running" | "rolling_back" | "succeeded" | "failed";

/** The deploy strategies of fly.toml's [deploy] strategy that the release orchestrator carries out. */
export const RELEASE_STRATEGIES = ["rolling", "immediate", "canary", "bluegreen"] as const;
export type ReleaseStrategy = (typeof RELEASE_STRATEGIES)[number];

/** A process group's machine count in a release. */
export interface ReleaseGroup {
  group: string;
  count: number;
  /** The region of each slot; empty: wherever the orchestrator defaults. */
  regions?: string[];
}

/** What an edge app's release runs in the proxies: its bundle (by digest) and its limits. */
export interface ReleaseEdge {
  /** `sha256:<hex>` of the bundle's code: the object `<app>/<digest>` of the hangar-edge-bundles bucket. */
  bundleDigest: string;
  /** CPU time per request, in ms. */
  cpuMs: number;
  /** The isolate's heap, in MB. */
  memoryMb: number;
}

export interface Release {
  version: number;
  releaseId: string;
  /** The image the machines run; "" for an edge release. */
  imageRef: string;
  /** An edge app's release: its bundle instead of an image (it has no machines); null otherwise. */
  edge: ReleaseEdge | null;
  buildId: string;
  configJson: string;
  strategy: string;
  description: string;
  status: ReleaseStatus;
  reason: string;
  machineIds: string[];
  /** Rolling: a count ("2") or a fraction of each group ("0.33"); empty for the default (1). */
  maxUnavailable: string;
  /** How long each new machine has to be healthy (0: the orchestrator's default). */
  waitTimeoutMs: number;
  deployedBy: string;
  /** The release this one redeploys (`releases rollback`), or 0. */
  rollbackOf: number;
  /** Carried out by the platform's release orchestrator (else by the client, which ends it). */
  orchestrated: boolean;
  /** Set when the orchestrator takes it on. */
  groups: ReleaseGroup[];
  previousVersion: number;
  /** The previous release's machines per group when this one started: what a rollback restores. */
  previousGroups: ReleaseGroup[];
  startedAtMs: number;
  /** The release the app was returned to after this one failed, or 0. */
  rolledBackTo: number;
  /** The release_command's machine once started ("" before), and its exit code once it ended. */
  releaseCommand: CommandRun;
  /** A first deploy by `hangar launch`: [deploy] seed_command runs after the release_command. */
  seed: boolean;
  /** The seed_command's run, as `releaseCommand`'s. */
  seedCommand: CommandRun;
}

/** A command run in a machine of its own before a release replaces machines: its machine ("" before it started), and how it ended. */
export interface CommandRun {
  machineId: string;
  exitCode: number | null;
  reason: string;
}

/** Which command: [deploy] release_command, or [deploy] seed_command (a seeded release's, after it). */
export type CommandKind = "release" | "seed";

/** A release's run of `kind`. */
export function commandRun(r: Release, kind: CommandKind): CommandRun {
  return kind === "seed" ? r.seedCommand : r.releaseCommand;
}

/** The fly.toml key of a command kind, as messages name it. */
export function commandKey(kind: CommandKind): string {
  return kind === "seed" ? "seed_command" : "release_command";
}

const NOT_RUN: CommandRun = { machineId: "", exitCode: null, reason: "" };

/** The kind an event or command names ("" and absent: release). */
function kindOf(kind: string | null | undefined): CommandKind {
  return kind === "seed" ? "seed" : "release";
}

function withRun(r: Release, kind: CommandKind, run: CommandRun): Release {
  return kind === "seed" ? { ...r, seedCommand: run } : { ...r, releaseCommand: run };
}

/** An app's releases, oldest first. */
export interface ReleasesState {
  releases: Release[];
}

export type ReleaseCommand =
  | {
      type: "CreateRelease";
      releaseId: string;
      /** The image, or "" for an edge release. */
      imageRef: string;
      /** An edge release: the bundle instead of an image. */
      edge?: ReleaseEdge;
      buildId?: string;
      configJson: string;
      strategy?: string;
      description?: string;
      maxUnavailable?: string;
      waitTimeoutMs?: number;
      deployedBy?: string;
      rollbackOf?: number;
      orchestrated?: boolean;
      /** A first deploy by `hangar launch`: runs [deploy] seed_command (orchestrated releases only). */
      seed?: boolean;
    }
  | {
      type: "StartRelease";
      version: number;
      groups: ReleaseGroup[];
      previousVersion: number;
      previousGroups: ReleaseGroup[];
      startedAtMs: number;
    }
  | { type: "RollBackRelease"; version: number; reason: string }
  | { type: "StartReleaseCommand"; version: number; machineId: string; kind?: CommandKind }
  | {
      type: "FinishReleaseCommand";
      version: number;
      exitCode: number;
      reason: string;
      kind?: CommandKind;
    }
  | { type: "SucceedRelease"; version: number; machineIds: string[] }
  | { type: "FailRelease"; version: number; reason: string; rolledBackTo?: number };

const ENDED: ReadonlySet<ReleaseStatus> = new Set(["succeeded", "failed"]);

/** The release the app serves: the newest that succeeded. */
export function currentRelease(state: ReleasesState): Release | undefined {
  return state.releases.findLast((r) => r.status === "succeeded");
}

function unended(state: ReleasesState, version: number): Release {
  const r = state.releases.find((x) => x.version === version);
  if (!r) throw new DomainError(`release v${version} not found`, "not_found");
  if (ENDED.has(r.status))
    throw new DomainError(`release v${version} already ${r.status}`, "failed_precondition");
  return r;
}

/** A release the orchestrator carries out and has not ended: pending, running or rolling back. */
export function inProgress(state: ReleasesState): Release[] {
  return state.releases.filter((r) => r.orchestrated && !ENDED.has(r.status));
}

/** Whether a maxUnavailable is a positive count or a fraction in (0, 1]. */
export function validMaxUnavailable(v: string): boolean {
  if (v === "") return true;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 && (Number.isInteger(n) || n <= 1);
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
        if (!command.imageRef && !command.edge)
          throw new DomainError("a release needs an image or an edge bundle", "invalid_argument");
        if (command.imageRef && command.edge)
          throw new DomainError("a release runs an image or an edge bundle, not both", "invalid_argument");
        if (command.edge) {
          const problem = edgeProblem(command.edge);
          if (problem) throw new DomainError(problem, "invalid_argument");
        }
        if (!validMaxUnavailable(command.maxUnavailable ?? ""))
          throw new DomainError(
            `max_unavailable ${command.maxUnavailable}: expected a count (2) or a fraction (0.33)`,
            "invalid_argument",
          );
        if (
          command.orchestrated &&
          !(RELEASE_STRATEGIES as readonly string[]).includes(command.strategy ?? "")
        )
          throw new DomainError(
            `strategy ${command.strategy}: expected one of ${RELEASE_STRATEGIES.join(", ")}`,
            "invalid_argument",
          );
        if (command.rollbackOf && !state.releases.some((r) => r.version === command.rollbackOf))
          throw new DomainError(`release v${command.rollbackOf} not found`, "not_found");
        if (command.seed && !command.orchestrated)
          throw new DomainError(
            "a seeded release runs its seed_command on the platform: it must be deployed by it",
            "invalid_argument",
          );
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
              maxUnavailable: command.maxUnavailable ?? "",
              waitTimeoutMs: command.waitTimeoutMs ?? 0,
              deployedBy: command.deployedBy ?? "",
              rollbackOf: command.rollbackOf ?? 0,
              orchestrated: command.orchestrated ?? false,
              ...(command.seed ? { seed: true } : {}),
              ...(command.edge
                ? {
                    edgeBundleDigest: command.edge.bundleDigest,
                    edgeCpuMs: command.edge.cpuMs,
                    edgeMemoryMb: command.edge.memoryMb,
                  }
                : {}),
            },
          },
        ];
      case "StartRelease": {
        const r = unended(state, command.version);
        if (!r.orchestrated)
          throw new DomainError(
            `release v${command.version} is carried out by its client`,
            "failed_precondition",
          );
        // Started once: a second orchestrator (a restarted leader) finds it started and goes on.
        if (r.status !== "pending") return [];
        return [
          {
            type: "ReleaseStarted",
            data: {
              version: command.version,
              groups: command.groups,
              previousVersion: command.previousVersion,
              previousGroups: command.previousGroups,
              startedAtMs: command.startedAtMs,
            },
          },
        ];
      }
      case "StartReleaseCommand": {
        const r = unended(state, command.version);
        const kind = command.kind ?? "release";
        if (r.status !== "pending")
          throw new DomainError(
            `release v${command.version} is ${r.status}: its ${commandKey(kind)} runs before it starts`,
            "failed_precondition",
          );
        if (kind === "seed") {
          if (!r.seed)
            throw new DomainError(
              `release v${command.version} is not a first deploy by launch: it runs no seed_command`,
              "failed_precondition",
            );
          if (r.releaseCommand.machineId && r.releaseCommand.exitCode !== 0)
            throw new DomainError(
              `release v${command.version}'s release_command has not exited 0: the seed_command runs after it`,
              "failed_precondition",
            );
        }
        // Once per release: a second start (a new leader) names the machine already recorded.
        if (commandRun(r, kind).machineId) return [];
        return [
          {
            type: "ReleaseCommandStarted",
            data: {
              version: command.version,
              machineId: command.machineId,
              ...(kind === "seed" ? { kind } : {}),
            },
          },
        ];
      }
      case "FinishReleaseCommand": {
        const r = unended(state, command.version);
        const kind = command.kind ?? "release";
        const run = commandRun(r, kind);
        if (!run.machineId)
          throw new DomainError(
            `release v${command.version} has no ${commandKey(kind)} running`,
            "failed_precondition",
          );
        if (run.exitCode !== null || run.reason) return [];
        return [
          {
            type: "ReleaseCommandFinished",
            data: {
              version: command.version,
              machineId: run.machineId,
              exitCode: command.exitCode,
              reason: command.reason,
              ...(kind === "seed" ? { kind } : {}),
            },
          },
        ];
      }
      case "RollBackRelease": {
        const r = unended(state, command.version);
        if (r.status === "rolling_back") return [];
        if (r.status !== "running")
          throw new DomainError(
            `release v${command.version} is ${r.status}, not running`,
            "failed_precondition",
          );
        return [{ type: "ReleaseRollingBack", data: { version: command.version, reason: command.reason } }];
      }
      case "SucceedRelease": {
        const r = unended(state, command.version);
        if (r.status === "rolling_back")
          throw new DomainError(`release v${command.version} is rolling back`, "failed_precondition");
        return [
          { type: "ReleaseSucceeded", data: { version: command.version, machineIds: command.machineIds } },
        ];
      }
      case "FailRelease":
        unended(state, command.version);
        return [
          {
            type: "ReleaseFailed",
            data: {
              version: command.version,
              reason: command.reason,
              rolledBackTo: command.rolledBackTo ?? 0,
            },
          },
        ];
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
          edge: d.edgeBundleDigest
            ? { bundleDigest: d.edgeBundleDigest, cpuMs: d.edgeCpuMs ?? 0, memoryMb: d.edgeMemoryMb ?? 0 }
            : null,
          buildId: d.buildId ?? "",
          configJson: d.configJson ?? "",
          strategy: d.strategy ?? "",
          description: d.description ?? "",
          status: "pending",
          reason: "",
          machineIds: [],
          maxUnavailable: d.maxUnavailable ?? "",
          waitTimeoutMs: Number(d.waitTimeoutMs ?? 0),
          deployedBy: d.deployedBy ?? "",
          rollbackOf: d.rollbackOf ?? 0,
          orchestrated: d.orchestrated ?? false,
          groups: [],
          previousVersion: 0,
          previousGroups: [],
          startedAtMs: 0,
          rolledBackTo: 0,
          releaseCommand: NOT_RUN,
          seed: d.seed ?? false,
          seedCommand: NOT_RUN,
        };
        return { releases: [...state.releases, release] };
      }
      case "ReleaseStarted": {
        const d = event.data;
        return update(state, d.version ?? 0, (r) => ({
          ...r,
          status: "running",
          groups: (d.groups ?? []).map(groupOf),
          previousVersion: d.previousVersion ?? 0,
          previousGroups: (d.previousGroups ?? []).map(groupOf),
          startedAtMs: Number(d.startedAtMs ?? 0),
        }));
      }
      case "ReleaseCommandStarted": {
        const d = event.data;
        return update(state, d.version ?? 0, (r) =>
          withRun(r, kindOf(d.kind), { machineId: d.machineId ?? "", exitCode: null, reason: "" }),
        );
      }
      case "ReleaseCommandFinished": {
        const d = event.data;
        return update(state, d.version ?? 0, (r) => {
          const kind = kindOf(d.kind);
          return withRun(r, kind, {
            machineId: d.machineId ?? commandRun(r, kind).machineId,
            exitCode: d.reason ? null : (d.exitCode ?? 0),
            reason: d.reason ?? "",
          });
        });
      }
      case "ReleaseRollingBack": {
        const d = event.data;
        return update(state, d.version ?? 0, (r) => ({
          ...r,
          status: "rolling_back",
          reason: d.reason ?? "",
        }));
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
                : {
                    ...r,
                    status: "failed",
                    reason: event.data.reason ?? "",
                    rolledBackTo: event.data.rolledBackTo ?? 0,
                  },
          ),
        };
      }
    }
  },
};

/** A bundle digest as the bundler and the gateway write it. */
export const EDGE_BUNDLE_DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Why an edge release's bundle or limits cannot be run, or undefined. */
function edgeProblem(edge: ReleaseEdge): string | undefined {
  if (!EDGE_BUNDLE_DIGEST.test(edge.bundleDigest))
    return `edge bundle ${JSON.stringify(edge.bundleDigest)}: expected sha256:<64 hex digits>`;
  if (!Number.isInteger(edge.cpuMs) || edge.cpuMs < 1)
    return `edge cpu_ms ${edge.cpuMs}: expected at least 1`;
  if (!Number.isInteger(edge.memoryMb) || edge.memoryMb < 1)
    return `edge memory_mb ${edge.memoryMb}: expected at least 1`;
  return undefined;
}

function update(state: ReleasesState, version: number, f: (r: Release) => Release): ReleasesState {
  return { releases: state.releases.map((r) => (r.version === version ? f(r) : r)) };
}

function groupOf(g: {
  group?: string | null;
  count?: number | null;
  regions?: string[] | null;
}): ReleaseGroup {
  return { group: g.group ?? "", count: g.count ?? 0, ...(g.regions?.length ? { regions: g.regions } : {}) };
}
