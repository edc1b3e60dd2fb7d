import { MachineDir } from "../state.js";
import type { MachineRunSpec } from "../types.js";
import type { MachineTeardown, RunSetup } from "./part.js";

/** A run of machine `machineId` as launch hands it to the parts, before any has prepared. */
export function runSetup(stateDir: string, machineId: string, spec: Partial<MachineRunSpec> = {}): RunSetup {
  return {
    spec: {
      machineId,
      app: "web",
      region: "local",
      imageRef: "dir:/srv",
      instanceId: "v1",
      cmd: ["true"],
      cwd: "/",
      env: {},
      ...spec,
    },
    dir: new MachineDir(stateDir, machineId),
    privateIp: "",
    privateIpv6: "",
    port: 0,
    cgroup: null,
    limits: null,
    rootfs: null,
    range: null,
    user: null,
    output: null,
    binds: [],
  };
}

/** The machine `run` belongs to, as destroy hands it to the parts. */
export function teardownOf(run: RunSetup): MachineTeardown {
  return { machineId: run.spec.machineId, dir: run.dir, lastRun: null };
}
