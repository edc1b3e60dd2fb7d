import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import {
  type ExistingMachine,
  MACHINE_METADATA_LIMITS,
  type MachineCommand,
  type MachineEvent,
  type MachineState,
  machineDecider,
} from "./machine.js";

const spec = deciderSpec(machineDecider);

const create: Extract<MachineCommand, { type: "CreateMachine" }> = {
  type: "CreateMachine",
  machineId: "m1",
  app: "hello",
  name: "m1-name",
  region: "local",
  instanceId: "i1",
  configJson: '{"image":"dir:/srv/hello"}',
  skipLaunch: false,
  hostId: "h1",
};
const now = 1_000_000;
const { type: _, ...createdData } = create;
const created: MachineEvent = { type: "MachineCreated", data: createdData };
const startRequested: MachineEvent = { type: "MachineStartRequested", data: { instanceId: "i1" } };
const recordStarted = {
  type: "RecordStarted",
  hostId: "h1",
  pid: 42,
  privateIp: "127.77.0.2",
  privateIpv6: "",
  port: 40000,
  startTime: 777,
  adopted: false,
} as const;
const { type: __, ...startedData } = recordStarted;
const started: MachineEvent = { type: "MachineStarted", data: startedData };
const stopRequested: MachineEvent = { type: "MachineStopRequested", data: { signal: "SIGINT", timeoutS: 5 } };
const running = [created, startRequested, started];
const exit = (exitCode: number, restart = false) =>
  ({ type: "RecordExited", exitCode, signal: "", codeUnknown: false, restart }) as const;
const exited = (exitCode: number, requested: boolean): MachineEvent => ({
  type: "MachineExited",
  data: { exitCode, signal: "", requested, codeUnknown: false },
});

describe("machine decider", () => {
  it("creates and asks for a start in one decision", () => {
    spec.given([]).when(create).then([created, startRequested]);
  });

  it("creates without a start when skip_launch is set", () => {
    spec
      .given([])
      .when({ ...create, skipLaunch: true })
      .then([{ type: "MachineCreated", data: { ...createdData, skipLaunch: true } }]);
  });

  it("refuses to create a machine twice", () => {
    spec
      .given([created])
      .when(create)
      .thenThrows((e) => isDomainError(e, "already_exists"));
  });

  it("records the host agent's start of a starting machine, once", () => {
    spec.given([created, startRequested]).when(recordStarted).then([started]);
    spec.given(running).when(recordStarted).then([]);
  });

  it("decides nothing when asked to start a machine that is already started", () => {
    spec.given(running).when({ type: "StartMachine", nowMs: now }).then([]);
  });

  it("lets the proxy route to a machine again when a start asks to uncordon it", () => {
    const cordoned: MachineEvent = { type: "MachineCordoned", data: {} };
    const uncordoned: MachineEvent = { type: "MachineUncordoned", data: {} };
    const stopped = [...running, stopRequested, exited(0, true)];
    spec
      .given([...stopped, cordoned])
      .when({ type: "StartMachine", uncordon: true, nowMs: now })
      .then([uncordoned, startRequested]);
    spec
      .given([...running, cordoned])
      .when({ type: "StartMachine", uncordon: true, nowMs: now })
      .then([uncordoned]);
    spec
      .given([...stopped, cordoned])
      .when({ type: "StartMachine", nowMs: now })
      .then([startRequested]);
    spec.given(stopped).when({ type: "StartMachine", uncordon: true, nowMs: now }).then([startRequested]);
  });

  it("stops a started machine with the requested signal and timeout", () => {
    spec
      .given(running)
      .when({ type: "StopMachine", signal: "SIGINT", timeoutS: 5, nowMs: now })
      .then([stopRequested]);
  });

  it("marks an exit after a stop request as requested", () => {
    spec
      .given([...running, stopRequested])
      .when(exit(0))
      .then([exited(0, true)]);
  });

  it("marks a crash as not requested, and restarts it when the host agent's policy says so", () => {
    spec
      .given(running)
      .when(exit(137))
      .then([exited(137, false)]);
    spec
      .given(running)
      .when(exit(1, true))
      .then([exited(1, false), { type: "MachineRestarting", data: { attempt: 1 } }, startRequested]);
  });

  it("destroys a machine with auto_destroy once its process has ended and is not started again", () => {
    const configJson = '{"image":"dir:/srv/hello","auto_destroy":true}';
    const autoDestroyed = [{ ...created, data: { ...createdData, configJson } }, startRequested, started];
    const destroyRequested: MachineEvent = { type: "MachineDestroyRequested", data: { force: false } };
    // By itself, with any code, and when stopped.
    spec
      .given(autoDestroyed)
      .when(exit(0))
      .then([exited(0, false), destroyRequested]);
    spec
      .given(autoDestroyed)
      .when(exit(3))
      .then([exited(3, false), destroyRequested]);
    spec
      .given([...autoDestroyed, stopRequested])
      .when(exit(0))
      .then([exited(0, true), destroyRequested]);
    // Not while its restart policy starts it again, nor when an update replaces its process.
    spec
      .given(autoDestroyed)
      .when(exit(1, true))
      .then([exited(1, false), { type: "MachineRestarting", data: { attempt: 1 } }, startRequested]);
    spec
      .given([...autoDestroyed, { type: "MachineUpdated", data: { instanceId: "i2", configJson, name: "" } }])
      .when(exit(0))
      .then([exited(0, true), { type: "MachineStartRequested", data: { instanceId: "i2" } }]);
    // auto_destroy false, or a config that is not JSON: kept, stopped.
    spec
      .given([
        { ...created, data: { ...createdData, configJson: '{"auto_destroy":false}' } },
        startRequested,
        started,
      ])
      .when(exit(0))
      .then([exited(0, false)]);
  });

  it("records an OOM kill with the exit, and restarts the machine by its policy like any failed exit", () => {
    spec
      .given(running)
      .when({ ...exit(137, true), signal: "SIGKILL", oomKilled: true })
      .then([
        {
          type: "MachineExited",
          data: { exitCode: 137, signal: "SIGKILL", requested: false, codeUnknown: false, oomKilled: true },
        },
        { type: "MachineRestarting", data: { attempt: 1 } },
        startRequested,
      ]);
  });

  it("never restarts by policy after a requested stop", () => {
    spec
      .given([...running, stopRequested])
      .when(exit(0, true))
      .then([exited(0, true)]);
  });

  it("restarts: stops, then asks for a start once the process has exited", () => {
    const restart: MachineEvent = {
      type: "MachineRestartRequested",
      data: { signal: "SIGTERM", timeoutS: 3 },
    };
    spec
      .given(running)
      .when({ type: "RestartMachine", signal: "SIGTERM", timeoutS: 3, nowMs: now })
      .then([restart]);
    spec
      .given([...running, restart])
      .when(exit(0))
      .then([exited(0, true), startRequested]);
  });

  it("replaces a running machine on update and starts it with the new config", () => {
    const updated: MachineEvent = {
      type: "MachineUpdated",
      data: { instanceId: "i2", configJson: '{"image":"dir:/srv/v2"}', name: "m1-name" },
    };
    const update = {
      type: "UpdateMachine",
      instanceId: "i2",
      configJson: '{"image":"dir:/srv/v2"}',
      name: "m1-name",
      skipLaunch: false,
      nowMs: now,
    } as const;
    spec.given(running).when(update).then([updated]);
    spec
      .given([...running, updated])
      .when(exit(0))
      .then([exited(0, true), { type: "MachineStartRequested", data: { instanceId: "i2" } }]);
    spec
      .given([created])
      .when(update)
      .then([updated, { type: "MachineStartRequested", data: { instanceId: "i2" } }]);
  });

  it("suspends a started machine and resumes it by starting it", () => {
    const suspended: MachineEvent[] = [
      { type: "MachineSuspendRequested", data: {} },
      { type: "MachineSuspended", data: {} },
    ];
    spec
      .given(running)
      .when({ type: "SuspendMachine", nowMs: now })
      .then([{ type: "MachineSuspendRequested", data: {} }]);
    spec
      .given([...running, ...suspended])
      .when({ type: "StartMachine", nowMs: now })
      .then([startRequested]);
    spec
      .given([...running, ...suspended, startRequested])
      .when(recordStarted)
      .then([started]);
  });

  it("refuses to destroy a started machine without force", () => {
    spec
      .given(running)
      .when({ type: "DestroyMachine", force: false, nowMs: now })
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
  });

  it("destroys a started machine with force", () => {
    spec
      .given(running)
      .when({ type: "DestroyMachine", force: true, nowMs: now })
      .then([{ type: "MachineDestroyRequested", data: { force: true } }]);
  });

  it("treats a destroyed machine as gone", () => {
    spec
      .given([
        created,
        { type: "MachineDestroyRequested", data: { force: false } },
        { type: "MachineDestroyed", data: {} },
      ])
      .when({ type: "StartMachine", nowMs: now })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  it("refuses commands for a machine that does not exist", () => {
    spec
      .given([])
      .when({ type: "StopMachine", signal: "SIGINT", timeoutS: 5, nowMs: now })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  describe("leases", () => {
    const lease: MachineEvent = {
      type: "MachineLeaseAcquired",
      data: { nonce: "n1", expiresAtUnixMs: now + 30_000, owner: "ops", description: "deploy" },
    };
    const acquire = {
      type: "AcquireLease",
      nonce: "n1",
      ttlS: 30,
      owner: "ops",
      description: "deploy",
      nowMs: now,
    } as const;

    it("grants a lease to one holder at a time until it expires", () => {
      spec.given(running).when(acquire).then([lease]);
      spec
        .given([...running, lease])
        .when({ ...acquire, nonce: "n2" })
        .thenThrows((e) => isDomainError(e, "lease_held"));
      spec
        .given([...running, lease])
        .when({ ...acquire, nonce: "n2", nowMs: now + 31_000 })
        .then([{ ...lease, data: { ...lease.data, nonce: "n2", expiresAtUnixMs: now + 61_000 } }]);
    });

    it("guards changes of a leased machine by its nonce", () => {
      spec
        .given([...running, lease])
        .when({ type: "StopMachine", signal: "SIGINT", timeoutS: 5, nowMs: now })
        .thenThrows((e) => isDomainError(e, "lease_held"));
      spec
        .given([...running, lease])
        .when({ type: "StopMachine", signal: "SIGINT", timeoutS: 5, nowMs: now, leaseNonce: "n1" })
        .then([stopRequested]);
    });

    it("releases only with the right nonce", () => {
      spec
        .given([...running, lease])
        .when({ type: "ReleaseLease", nonce: "bad", nowMs: now })
        .thenThrows((e) => isDomainError(e, "lease_held"));
      spec
        .given([...running, lease])
        .when({ type: "ReleaseLease", nonce: "n1", nowMs: now })
        .then([{ type: "MachineLeaseReleased", data: { nonce: "n1" } }]);
    });
  });

  it("records only check changes", () => {
    const passing: MachineEvent = {
      type: "MachineCheckChanged",
      data: { name: "http", status: "passing", output: "200" },
    };
    spec
      .given(running)
      .when({ type: "RecordCheck", name: "http", status: "passing", output: "200" })
      .then([passing]);
    spec
      .given([...running, passing])
      .when({ type: "RecordCheck", name: "http", status: "passing", output: "200" })
      .then([]);
  });

  describe("metadata", () => {
    const set = (key: string, value: string): MachineEvent => ({
      type: "MachineMetadataSet",
      data: { key, value },
    });
    const fold = (events: MachineEvent[]): ExistingMachine =>
      events.reduce<MachineState>(machineDecider.evolve, machineDecider.initialState()) as ExistingMachine;

    it("sets a key in the config in place: same instance, same status, no start or stop", () => {
      spec
        .given(running)
        .when({ type: "SetMachineMetadata", key: "role", value: "primary" })
        .then([set("role", "primary")]);
      const before = fold(running);
      const after = fold([...running, set("role", "primary")]);
      expect(JSON.parse(after.configJson)).toEqual({
        image: "dir:/srv/hello",
        metadata: { role: "primary" },
      });
      expect({ ...after, configJson: "" }).toEqual({ ...before, configJson: "" });
      expect(after.status).toBe("started");
      expect(after.instanceId).toBe("i1");
    });

    it("decides nothing for a value the key already has, or a key that is not there", () => {
      spec
        .given([...running, set("role", "primary")])
        .when({ type: "SetMachineMetadata", key: "role", value: "primary" })
        .then([]);
      spec.given(running).when({ type: "DeleteMachineMetadata", key: "role" }).then([]);
    });

    it("deletes a key and keeps the others", () => {
      const deleted: MachineEvent = { type: "MachineMetadataDeleted", data: { key: "role" } };
      spec
        .given([...running, set("role", "primary"), set("zone", "a")])
        .when({ type: "DeleteMachineMetadata", key: "role" })
        .then([deleted]);
      const after = fold([...running, set("role", "primary"), set("zone", "a"), deleted]);
      expect(JSON.parse(after.configJson).metadata).toEqual({ zone: "a" });
    });

    it("keeps metadata the config was created with, and a full update replaces it", () => {
      const withMeta = {
        ...created,
        data: { ...createdData, configJson: '{"image":"x","metadata":{"fly_process_group":"app"}}' },
      };
      const after = fold([withMeta, set("role", "primary")]);
      expect(JSON.parse(after.configJson).metadata).toEqual({ fly_process_group: "app", role: "primary" });
    });

    it("is not guarded by a lease (fly-go sends no nonce with it)", () => {
      const lease: MachineEvent = {
        type: "MachineLeaseAcquired",
        data: { nonce: "n1", expiresAtUnixMs: now + 30_000, owner: "ops", description: "" },
      };
      // The gateway adds the time to every command it sends; metadata commands ignore it.
      const command = { type: "SetMachineMetadata", key: "k", value: "v", nowMs: now } as MachineCommand;
      spec
        .given([...running, lease])
        .when(command)
        .then([set("k", "v")]);
    });

    it("refuses bad keys, long values, too many keys, and machines being destroyed or gone", () => {
      for (const key of ["", "a b", "a/b", "k".repeat(65), "ключ"]) {
        spec
          .given(running)
          .when({ type: "SetMachineMetadata", key, value: "v" })
          .thenThrows((e) => isDomainError(e, "invalid_argument"));
      }
      spec
        .given(running)
        .when({
          type: "SetMachineMetadata",
          key: "k",
          value: "v".repeat(MACHINE_METADATA_LIMITS.valueChars + 1),
        })
        .thenThrows((e) => isDomainError(e, "invalid_argument"));
      const full = Array.from({ length: MACHINE_METADATA_LIMITS.keys }, (_, i) => set(`k${i}`, "v"));
      spec
        .given([...running, ...full])
        .when({ type: "SetMachineMetadata", key: "one-more", value: "v" })
        .thenThrows((e) => isDomainError(e, "invalid_argument"));
      spec
        .given([...running, ...full])
        .when({ type: "SetMachineMetadata", key: "k0", value: "changed" })
        .then([set("k0", "changed")]);
      const destroying: MachineEvent = { type: "MachineDestroyRequested", data: { force: true } };
      spec
        .given([...running, destroying])
        .when({ type: "SetMachineMetadata", key: "k", value: "v" })
        .thenThrows((e) => isDomainError(e, "failed_precondition"));
      spec
        .given([...running, destroying, { type: "MachineDestroyed", data: {} }])
        .when({ type: "DeleteMachineMetadata", key: "k" })
        .thenThrows((e) => isDomainError(e, "not_found"));
      spec
        .given([])
        .when({ type: "SetMachineMetadata", key: "k", value: "v" })
        .thenThrows((e) => isDomainError(e, "not_found"));
    });
  });
});
