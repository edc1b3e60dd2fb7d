import { isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { type MachineCreator, placeThenCreateMachine } from "./place-machine.js";

/** A creator that fails the test if anything of it is used: the refusal comes before placement is asked. */
const untouched = new Proxy({} as MachineCreator, {
  get(_target, key) {
    throw new Error(`placeThenCreateMachine used creator.${String(key)} for a refused machine`);
  },
});

describe("placeThenCreateMachine", () => {
  it("refuses a config that mounts a volume without the volume's host, before placing anything", async () => {
    const refused = await placeThenCreateMachine(untouched, {
      app: "web",
      machineId: "0123456789abcdef",
      region: "ams",
      config: { image: "nginx", mounts: [{ volume: "vol_0123456789abcdef", path: "/data" }] },
    }).catch((err: unknown) => err);
    expect(isDomainError(refused, "failed_precondition")).toBe(true);
    expect((refused as Error).message).toMatch(/mounts a volume but no volume host was given/);
  });
});
