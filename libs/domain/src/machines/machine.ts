import { type Decider, DomainError, defineStream, type EventOf, eventCodec } from "@hangar/eventstore";
import { hangar } from "@hangar/proto";

const messages = {
  MachineCreated: hangar.v1.MachineCreated,
  MachineStartRequested: hangar.v1.MachineStartRequested,
  MachineStarted: hangar.v1.MachineStarted,
  MachineStartFailed: hangar.v1.MachineStartFailed,
  MachineStopRequested: hangar.v1.MachineStopRequested,
  MachineRestartRequested: hangar.v1.MachineRestartRequested,
  MachineExited: hangar.v1.MachineExited,
  MachineRestarting: hangar.v1.MachineRestarting,
  MachineUpdated: hangar.v1.MachineUpdated,
  MachineSuspendRequested: hangar.v1.MachineSuspendRequested,
  MachineSuspended: hangar.v1.MachineSuspended,
  MachineDestroyRequested: hangar.v1.MachineDestroyRequested,
  MachineDestroyed: hangar.v1.MachineDestroyed,
  MachineCordoned: hangar.v1.MachineCordoned,
  MachineUncordoned: hangar.v1.MachineUncordoned,
  MachineLeaseAcquired: hangar.v1.MachineLeaseAcquired,
  MachineLeaseReleased: hangar.v1.MachineLeaseReleased,
  MachineCheckChanged: hangar.v1.MachineCheckChanged,
  MachineMetadataSet: hangar.v1.MachineMetadataSet,
  MachineMetadataDeleted: hangar.v1.MachineMetadataDeleted,
};

/** A machine's events. */
export type MachineEvent = EventOf<typeof messages>;

/** The MACHINES stream: one subject per machine, `ev.machine.<app>.<machine_id>`. */
export const machinesStream = defineStream({
  name: "MACHINES",
  subjectPrefix: "ev.machine",
  codec: eventCodec(messages),
});

/** The aggregate id of a machine: its app and id, which is also the tail of its subject. */
export function machineAggregateId(app: string, machineId: string): string {
  return `${app}.${machineId}`;
}

/** Fly's machine states (`replacing` is an update of a running machine). */
export type MachineStatus =
  | "created"
  | "starting"
  | "started"
  | "stopping"
  | "stopped"
  | "suspending"
  | "suspended"
  | "replacing"
  | "destroying"
  | "destroyed"
  | "failed";

export interface MachineLease {
  nonce: string;
  expiresAtMs: number;
  owner: string;
  description: string;
}

export interface MachineCheck {
  status: string;
  output: string;
}

export interface ExistingMachine {
  status: MachineStatus;
  machineId: string;
  app: string;
  name: string;
  region: string;
  instanceId: string;
  configJson: string;
  hostId: string;
  /** The running process as the host agent reported it; 0 when none runs. */
  pid: number;
  startTime: number;
  privateIp: string;
  /** Its address on its org's private network (6PN); empty on the host's network. */
  privateIpv6: string;
  port: number;
  lastExitCode: number | null;
  /** The stop in progress (for a host agent that takes over half-way). */
  stopSignal: string;
  stopTimeoutS: number;
  /** Start again once the running process has exited (restart, update). */
  startAfterExit: boolean;
  /** Restarts by the restart policy since the last requested stop. */
  restarts: number;
  cordoned: boolean;
  lease: MachineLease | null;
  checks: Record<string, MachineCheck>;
  failure: string;
}

export type MachineState = { status: "absent" } | ExistingMachine;

/** Who asks, for commands a lease guards: the nonce they hold and the time they ask at. */
export interface LeaseGuard {
  leaseNonce?: string;
  nowMs: number;
}

export type MachineCommand =
  | {
      type: "CreateMachine";
      machineId: string;
      app: string;
      name: string;
      region: string;
      instanceId: string;
      configJson: string;
      skipLaunch: boolean;
      hostId: string;
    }
  /** `uncordon`: the start also lets the proxy route to the machine again (autostart, autoscaler). */
  | ({ type: "StartMachine"; uncordon?: boolean } & LeaseGuard)
  | ({ type: "StopMachine"; signal: string; timeoutS: number } & LeaseGuard)
  | ({ type: "RestartMachine"; signal: string; timeoutS: number } & LeaseGuard)
  | ({ type: "SuspendMachine" } & LeaseGuard)
  | ({
      type: "UpdateMachine";
      instanceId: string;
      configJson: string;
      name: string;
      skipLaunch: boolean;
    } & LeaseGuard)
  | ({ type: "DestroyMachine"; force: boolean } & LeaseGuard)
  | ({ type: "CordonMachine" } & LeaseGuard)
  | ({ type: "UncordonMachine" } & LeaseGuard)
  | { type: "AcquireLease"; nonce: string; ttlS: number; owner: string; description: string; nowMs: number }
  | { type: "ReleaseLease"; nonce: string; nowMs: number }
  /** A key of config.metadata, changed in place: same instance id, no restart, no lease needed (as Fly). */
  | { type: "SetMachineMetadata"; key: string; value: string }
  | { type: "DeleteMachineMetadata"; key: string }
  | {
      type: "RecordStarted";
      hostId: string;
      pid: number;
      privateIp: string;
      /** The 6PN address; empty for a machine on the host's network. */
      privateIpv6: string;
      port: number;
      startTime: number;
      adopted: boolean;
    }
  | { type: "RecordStartFailed"; message: string }
  | {
      type: "RecordExited";
      exitCode: number;
      signal: string;
      codeUnknown: boolean;
      restart: boolean;
      /** The OOM killer ended the run. */
      oomKilled?: boolean;
    }
  | { type: "RecordSuspended" }
  | { type: "RecordDestroyed" }
  | { type: "RecordCheck"; name: string; status: string; output: string };

/** What a metadata key and value may be, and how many keys one machine holds. */
export const MACHINE_METADATA_LIMITS = {
  keyPattern: /^[A-Za-z0-9_.-]{1,64}$/,
  valueChars: 1024,
  keys: 64,
} as const;

/** Why `key` (and `value`, when given) cannot be machine metadata, or undefined when it can. */
export function machineMetadataIssue(key: string, value?: string): string | undefined {
  if (!MACHINE_METADATA_LIMITS.keyPattern.test(key))
    return `metadata key ${JSON.stringify(key.slice(0, 80))} is invalid: 1 to 64 letters, digits, "_", "-" or "."`;
  if (value !== undefined && value.length > MACHINE_METADATA_LIMITS.valueChars)
    return `metadata value of ${key} is too long: at most ${MACHINE_METADATA_LIMITS.valueChars} characters`;
  return undefined;
}

/** The config.metadata of a machine's config JSON ({} when it has none). */
export function machineMetadataOf(configJson: string): Record<string, string> {
  const metadata = (JSON.parse(configJson || "{}") as { metadata?: Record<string, string> | null }).metadata;
  return metadata ?? {};
}

/** Whether a machine's config asks it to destroy itself once its process has ended (config.auto_destroy). */
export function autoDestroys(configJson: string): boolean {
  try {
    return (JSON.parse(configJson || "{}") as { auto_destroy?: unknown }).auto_destroy === true;
  } catch {
    return false;
  }
}

function withMetadata(configJson: string, metadata: Record<string, string>): string {
  return JSON.stringify({ ...(JSON.parse(configJson || "{}") as object), metadata });
}

// Commands a lease does not guard: the lease's own, and metadata (fly-go sends no nonce with them,
// and flyctl tags machines it holds leased during a bluegreen deploy).
const UNGUARDED: ReadonlySet<MachineCommand["type"]> = new Set([
  "AcquireLease",
  "ReleaseLease",
  "SetMachineMetadata",
  "DeleteMachineMetadata",
]);

function invalid(state: ExistingMachine, action: string): DomainError {
  return new DomainError(`cannot ${action} a machine that is ${state.status}`, "failed_precondition");
}

/** A running process belongs to the machine in these states. */
const RUNNING: ReadonlySet<MachineStatus> = new Set([
  "started",
  "stopping",
  "suspending",
  "suspended",
  "replacing",
]);

/** Whether a process of this machine may be running now (the host agent's question). */
export function machineMayRun(state: MachineState): boolean {
  return state.status !== "absent" && (RUNNING.has(state.status) || state.status === "starting");
}

function leaseHeld(state: ExistingMachine, guard: LeaseGuard): DomainError | undefined {
  const lease = state.lease;
  if (!lease || lease.expiresAtMs <= guard.nowMs || guard.leaseNonce === lease.nonce) return undefined;
  return new DomainError(
    `machine ${state.machineId} is leased${lease.description ? ` (${lease.description})` : ""}: send its nonce in the fly-machine-lease-nonce header, or wait for the lease to expire`,
    "lease_held",
  );
}

function decideExisting(
  command: Exclude<MachineCommand, { type: "CreateMachine" }>,
  state: ExistingMachine,
): MachineEvent[] {
  if ("nowMs" in command && !UNGUARDED.has(command.type)) {
    const held = leaseHeld(state, command);
    if (held) throw held;
  }
  switch (command.type) {
    case "StartMachine": {
      const uncordon: MachineEvent[] =
        command.uncordon && state.cordoned ? [{ type: "MachineUncordoned", data: {} }] : [];
      if (state.status === "starting" || state.status === "started") return uncordon;
      if (
        state.status === "created" ||
        state.status === "stopped" ||
        state.status === "failed" ||
        state.status === "suspended"
      )
        return [...uncordon, { type: "MachineStartRequested", data: { instanceId: state.instanceId } }];
      throw invalid(state, "start");
    }
    case "StopMachine": {
      if (
        state.status === "stopping" ||
        state.status === "stopped" ||
        state.status === "created" ||
        state.status === "failed"
      )
        return [];
      if (!RUNNING.has(state.status) && state.status !== "starting") throw invalid(state, "stop");
      return [{ type: "MachineStopRequested", data: { signal: command.signal, timeoutS: command.timeoutS } }];
    }
    case "RestartMachine":
      if (state.status === "created" || state.status === "stopped" || state.status === "failed")
        return [{ type: "MachineStartRequested", data: { instanceId: state.instanceId } }];
      if (state.status === "started" || state.status === "suspended")
        return [
          { type: "MachineRestartRequested", data: { signal: command.signal, timeoutS: command.timeoutS } },
        ];
      throw invalid(state, "restart");
    case "SuspendMachine":
      if (state.status === "suspending" || state.status === "suspended") return [];
      if (state.status !== "started") throw invalid(state, "suspend");
      return [{ type: "MachineSuspendRequested", data: {} }];
    case "UpdateMachine": {
      if (state.status === "destroying") throw invalid(state, "update");
      const updated: MachineEvent = {
        type: "MachineUpdated",
        data: { instanceId: command.instanceId, configJson: command.configJson, name: command.name },
      };
      // A running machine is replaced (stopped, then started with the new config) by its host agent.
      if (machineMayRun(state) || command.skipLaunch) return [updated];
      return [updated, { type: "MachineStartRequested", data: { instanceId: command.instanceId } }];
    }
    case "DestroyMachine":
      if (state.status === "destroying") return [];
      if (
        !command.force &&
        state.status !== "stopped" &&
        state.status !== "created" &&
        state.status !== "failed"
      ) {
        throw new DomainError(
          `machine is ${state.status}: stop it first, or destroy it with force`,
          "failed_precondition",
        );
      }
      return [{ type: "MachineDestroyRequested", data: { force: command.force } }];
    case "CordonMachine":
      return state.cordoned ? [] : [{ type: "MachineCordoned", data: {} }];
    case "UncordonMachine":
      return state.cordoned ? [{ type: "MachineUncordoned", data: {} }] : [];
    case "AcquireLease": {
      const lease = state.lease;
      if (lease && lease.expiresAtMs > command.nowMs) {
        throw new DomainError(`machine ${state.machineId} already has a lease`, "lease_held");
      }
      return [
        {
          type: "MachineLeaseAcquired",
          data: {
            nonce: command.nonce,
            expiresAtUnixMs: command.nowMs + command.ttlS * 1000,
            owner: command.owner,
            description: command.description,
          },
        },
      ];
    }
    case "ReleaseLease": {
      const lease = state.lease;
      if (!lease || lease.expiresAtMs <= command.nowMs) return [];
      if (lease.nonce !== command.nonce)
        throw new DomainError("the lease nonce does not match the machine's lease", "lease_held");
      return [{ type: "MachineLeaseReleased", data: { nonce: command.nonce } }];
    }
    case "SetMachineMetadata": {
      const issue = machineMetadataIssue(command.key, command.value);
      if (issue) throw new DomainError(issue, "invalid_argument");
      if (state.status === "destroying") throw invalid(state, "change the metadata of");
      const metadata = machineMetadataOf(state.configJson);
      if (metadata[command.key] === command.value) return [];
      if (!(command.key in metadata) && Object.keys(metadata).length >= MACHINE_METADATA_LIMITS.keys)
        throw new DomainError(
          `machine ${state.machineId} already has ${MACHINE_METADATA_LIMITS.keys} metadata keys: delete one first`,
          "invalid_argument",
        );
      return [{ type: "MachineMetadataSet", data: { key: command.key, value: command.value } }];
    }
    case "DeleteMachineMetadata":
      if (state.status === "destroying") throw invalid(state, "change the metadata of");
      if (!(command.key in machineMetadataOf(state.configJson))) return [];
      return [{ type: "MachineMetadataDeleted", data: { key: command.key } }];
    case "RecordStarted":
      if (state.status === "started" && state.pid === command.pid) return [];
      // A suspended process that is resumed keeps its pid: starting it again is what resumes it.
      if (state.status !== "starting") throw invalid(state, "record a start of");
      return [
        {
          type: "MachineStarted",
          data: {
            hostId: command.hostId,
            pid: command.pid,
            privateIp: command.privateIp,
            privateIpv6: command.privateIpv6,
            port: command.port,
            startTime: command.startTime,
            adopted: command.adopted,
          },
        },
      ];
    case "RecordStartFailed":
      if (state.status !== "starting") return [];
      return [{ type: "MachineStartFailed", data: { message: command.message } }];
    case "RecordExited": {
      if (!machineMayRun(state)) return [];
      const requested = state.status === "stopping" || state.status === "replacing";
      const events: MachineEvent[] = [
        {
          type: "MachineExited",
          data: {
            exitCode: command.exitCode,
            signal: command.signal,
            requested,
            codeUnknown: command.codeUnknown,
            ...(command.oomKilled ? { oomKilled: true } : {}),
          },
        },
      ];
      if (state.startAfterExit) {
        events.push({ type: "MachineStartRequested", data: { instanceId: state.instanceId } });
      } else if (command.restart && !requested) {
        events.push({ type: "MachineRestarting", data: { attempt: state.restarts + 1 } });
        events.push({ type: "MachineStartRequested", data: { instanceId: state.instanceId } });
      } else if (autoDestroys(state.configJson)) {
        // config.auto_destroy: the machine destroys itself once it is complete (its process ended and
        // is not started again), whether it ended by itself or was stopped, as on Fly.
        events.push({ type: "MachineDestroyRequested", data: { force: false } });
      }
      return events;
    }
    case "RecordSuspended":
      if (state.status !== "suspending") return [];
      return [{ type: "MachineSuspended", data: {} }];
    case "RecordDestroyed":
      if (state.status === "destroyed") return [];
      if (state.status !== "destroying") throw invalid(state, "record the destruction of");
      return [{ type: "MachineDestroyed", data: {} }];
    case "RecordCheck": {
      const current = state.checks[command.name];
      if (current && current.status === command.status) return [];
      return [
        {
          type: "MachineCheckChanged",
          data: { name: command.name, status: command.status, output: command.output },
        },
      ];
    }
  }
}

/**
 * The next state of a machine: a copy with `changes` over it. The copy is a literal of every field
 * because V8 builds it ten times faster than a spread of this 22-field object, and a rebuild folds
 * millions of events.
 */
function changed(s: ExistingMachine, changes: Partial<ExistingMachine>): ExistingMachine {
  const next: ExistingMachine = {
    status: s.status,
    machineId: s.machineId,
    app: s.app,
    name: s.name,
    region: s.region,
    instanceId: s.instanceId,
    configJson: s.configJson,
    hostId: s.hostId,
    pid: s.pid,
    startTime: s.startTime,
    privateIp: s.privateIp,
    privateIpv6: s.privateIpv6,
    port: s.port,
    lastExitCode: s.lastExitCode,
    stopSignal: s.stopSignal,
    stopTimeoutS: s.stopTimeoutS,
    startAfterExit: s.startAfterExit,
    restarts: s.restarts,
    cordoned: s.cordoned,
    lease: s.lease,
    checks: s.checks,
    failure: s.failure,
  };
  return Object.assign(next, changes);
}

function evolveExisting(state: ExistingMachine, event: MachineEvent): ExistingMachine {
  switch (event.type) {
    case "MachineCreated":
      return state;
    case "MachineStartRequested":
      return changed(state, { status: "starting", startAfterExit: false, failure: "" });
    case "MachineStarted": {
      const d = event.data;
      return changed(state, {
        status: "started",
        hostId: d.hostId ?? state.hostId,
        pid: d.pid ?? 0,
        privateIp: d.privateIp ?? "",
        privateIpv6: d.privateIpv6 ?? "",
        port: d.port ?? 0,
        startTime: d.startTime ?? 0,
      });
    }
    case "MachineStartFailed":
      return changed(state, { status: "failed", pid: 0, failure: event.data.message ?? "" });
    case "MachineStopRequested":
      return changed(state, {
        status: "stopping",
        stopSignal: event.data.signal ?? "",
        stopTimeoutS: event.data.timeoutS ?? 0,
        startAfterExit: false,
      });
    case "MachineRestartRequested":
      return changed(state, {
        status: "stopping",
        stopSignal: event.data.signal ?? "",
        stopTimeoutS: event.data.timeoutS ?? 0,
        startAfterExit: true,
      });
    case "MachineExited":
      return changed(state, {
        status: "stopped",
        pid: 0,
        startTime: 0,
        lastExitCode: event.data.codeUnknown ? null : (event.data.exitCode ?? 0),
        restarts: event.data.requested ? 0 : state.restarts,
        checks: {},
      });
    case "MachineRestarting":
      return changed(state, { restarts: event.data.attempt ?? state.restarts + 1 });
    case "MachineUpdated": {
      const d = event.data;
      const running = machineMayRun(state);
      return changed(state, {
        status: running ? "replacing" : state.status,
        startAfterExit: running,
        stopSignal: "",
        stopTimeoutS: 0,
        instanceId: d.instanceId ?? state.instanceId,
        configJson: d.configJson ?? state.configJson,
        name: d.name || state.name,
        restarts: 0,
      });
    }
    case "MachineSuspendRequested":
      return changed(state, { status: "suspending" });
    case "MachineSuspended":
      return changed(state, { status: "suspended" });
    case "MachineDestroyRequested":
      return changed(state, { status: "destroying", startAfterExit: false });
    case "MachineDestroyed":
      return changed(state, { status: "destroyed", pid: 0, startTime: 0, lease: null });
    case "MachineCordoned":
      return changed(state, { cordoned: true });
    case "MachineUncordoned":
      return changed(state, { cordoned: false });
    case "MachineLeaseAcquired": {
      const d = event.data;
      return changed(state, {
        lease: {
          nonce: d.nonce ?? "",
          expiresAtMs: d.expiresAtUnixMs ?? 0,
          owner: d.owner ?? "",
          description: d.description ?? "",
        },
      });
    }
    case "MachineLeaseReleased":
      return changed(state, { lease: null });
    case "MachineCheckChanged": {
      const d = event.data;
      return changed(state, {
        checks: { ...state.checks, [d.name ?? ""]: { status: d.status ?? "", output: d.output ?? "" } },
      });
    }
    case "MachineMetadataSet": {
      const metadata = {
        ...machineMetadataOf(state.configJson),
        [event.data.key ?? ""]: event.data.value ?? "",
      };
      return changed(state, { configJson: withMetadata(state.configJson, metadata) });
    }
    case "MachineMetadataDeleted": {
      const { [event.data.key ?? ""]: _, ...metadata } = machineMetadataOf(state.configJson);
      return changed(state, { configJson: withMetadata(state.configJson, metadata) });
    }
  }
}

/**
 * The machine aggregate. The control plane asks (…Requested, Updated), the host agent reports what
 * happened (Started, Exited, Suspended, Destroyed). Asking for the state a machine is already
 * heading to decides nothing, so retried requests are harmless.
 */
export const machineDecider: Decider<MachineState, MachineCommand, MachineEvent> = {
  initialState: () => ({ status: "absent" }),
  decide(command, state) {
    if (command.type === "CreateMachine") {
      if (state.status !== "absent")
        throw new DomainError(`machine ${command.machineId} already exists`, "already_exists");
      const { type: _, ...created } = command;
      const events: MachineEvent[] = [{ type: "MachineCreated", data: created }];
      if (!command.skipLaunch)
        events.push({ type: "MachineStartRequested", data: { instanceId: command.instanceId } });
      return events;
    }
    if (state.status === "absent") throw new DomainError("machine not found", "not_found");
    if (state.status === "destroyed") {
      if (command.type === "RecordDestroyed" || command.type === "RecordExited") return [];
      throw new DomainError("machine is destroyed", "not_found");
    }
    return decideExisting(command, state);
  },
  evolve(state, event) {
    if (event.type === "MachineCreated") {
      const d = event.data;
      return {
        status: "created",
        machineId: d.machineId ?? "",
        app: d.app ?? "",
        name: d.name ?? "",
        region: d.region ?? "",
        instanceId: d.instanceId ?? "",
        configJson: d.configJson ?? "",
        hostId: d.hostId ?? "",
        pid: 0,
        startTime: 0,
        privateIp: "",
        privateIpv6: "",
        port: 0,
        lastExitCode: null,
        stopSignal: "",
        stopTimeoutS: 0,
        startAfterExit: false,
        restarts: 0,
        cordoned: false,
        lease: null,
        checks: {},
        failure: "",
      };
    }
    if (state.status === "absent") return state;
    return evolveExisting(state, event);
  },
};
