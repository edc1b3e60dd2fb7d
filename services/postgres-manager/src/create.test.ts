import type { PgCluster } from "@hangar/domain";
import type { PgCreateRequest } from "@hangar/service";
import { describe, expect, it } from "vitest";
import { createRequestProblem, memberMachineConfig, memberMachineId } from "./create.js";

const ok: PgCreateRequest = {
  command_id: "c1",
  name: "db",
  org: "personal",
  region: "local",
  vm_size: "shared-cpu-1x",
  volume_size_gb: 1,
  initial_size: 3,
};

describe("a create request", () => {
  it("passes when every field is right", () => {
    expect(createRequestProblem(ok)).toBeUndefined();
  });

  it.each([
    [{ command_id: "" }, /command_id/],
    [{ name: "-db" }, /cluster name/],
    [{ name: 3 }, /name/],
    [{ org: "" }, /org/],
    [{ region: "Not A Region" }, /region/],
    [{ vm_size: "tiny" }, /vm size "tiny": one of shared-cpu-1x/],
    // A GPU size is a size flyctl knows, but no Postgres member runs on one (nor does Fly's).
    [{ vm_size: "l40s" }, /vm size "l40s": one of shared-cpu-1x(?!.*l40s)/],
    [{ volume_size_gb: "1" }, /volume_size_gb/],
    [{ initial_size: 0 }, /initial cluster size/],
    [{ initial_size: 2.5 }, /initial cluster size/],
  ])("is refused for %j", (over, message) => {
    expect(createRequestProblem({ ...ok, ...(over as object) } as PgCreateRequest)).toMatch(message);
  });
});

describe("a member", () => {
  it("has a machine id derived from the create and its index: the same again, another for another", () => {
    const id = memberMachineId("db", "c1", 0);
    expect(id).toMatch(/^[0-9a-f]{14}$/);
    expect(memberMachineId("db", "c1", 0)).toBe(id);
    expect(new Set([id, memberMachineId("db", "c1", 1), memberMachineId("db", "c2", 0)]).size).toBe(3);
  });

  it("runs the member image with its volume at /data, restart always, the preset's guest and PRIMARY_REGION", () => {
    const c = {
      cluster: "db",
      region: "ams",
      image: "hangar/postgres-member:15",
      vm_size: "shared-cpu-2x",
      cpus: 2,
      memory_mb: 512,
    };
    expect(memberMachineConfig(c as PgCluster, "vol_0123456789abcdef")).toEqual({
      image: "hangar/postgres-member:15",
      guest: { cpu_kind: "shared", cpus: 2, memory_mb: 512 },
      env: { PRIMARY_REGION: "ams" },
      restart: { policy: "always" },
      mounts: [{ volume: "vol_0123456789abcdef", name: "pg_data", path: "/data" }],
      metadata: { "fly-managed-postgres": "true", "hangar-postgres-cluster": "db" },
    });
  });
});
