import { type ExistingMachine, machineDecider } from "@hangar/domain";
import type { ImageConfig } from "@hangar/oci";
import { describe, expect, it } from "vitest";
import {
  ImageRunError,
  type ImageSource,
  imageEnv,
  imageRun,
  initCommand,
  type PulledImage,
  parseMachineConfig,
  resolveRun,
} from "./run-spec.js";

// Built by the machine decider, so the fixture follows the real state shape.
function machine(config: Record<string, unknown>): ExistingMachine {
  const state = machineDecider.evolve(machineDecider.initialState(), {
    type: "MachineCreated",
    data: {
      machineId: "m1",
      app: "hello",
      name: "hello-m1",
      region: "ams",
      instanceId: "v1",
      configJson: JSON.stringify(config),
      hostId: "h1",
    },
  });
  if (state.status === "absent") throw new Error("machine not created");
  return { ...state, status: "starting" };
}

function image(run: ImageConfig["config"]): PulledImage {
  return {
    repository: "hello",
    digest: "sha256:abc",
    config: { architecture: "amd64", os: "linux", config: run, rootfs: { type: "layers", diff_ids: [] } },
    lowers: ["/layers/top", "/layers/base"],
  };
}

const ref = "registry.hangar.internal/hello:v3";

describe("initCommand (Fly's init rules)", () => {
  const entrypoint = ["docker-entrypoint.sh"];
  const cmd = ["node", "server.js"];

  it("runs the image's ENTRYPOINT + CMD when the config says nothing", () => {
    expect(initCommand({}, entrypoint, cmd)).toEqual(["docker-entrypoint.sh", "node", "server.js"]);
  });

  it("init.exec replaces both", () => {
    expect(initCommand({ exec: ["/bin/sh", "-c", "x"], cmd: ["y"] }, entrypoint, cmd)).toEqual([
      "/bin/sh",
      "-c",
      "x",
    ]);
  });

  it("init.entrypoint and init.cmd each replace their own part", () => {
    expect(initCommand({ cmd: ["node", "worker.js"] }, entrypoint, cmd)).toEqual([
      "docker-entrypoint.sh",
      "node",
      "worker.js",
    ]);
    expect(initCommand({ entrypoint: ["tini", "--"] }, entrypoint, cmd)).toEqual([
      "tini",
      "--",
      "node",
      "server.js",
    ]);
    expect(initCommand({ entrypoint: [], cmd: [] }, [], cmd)).toEqual(cmd);
  });

  it("is undefined when nothing is left to run", () => {
    expect(initCommand({}, [], [])).toBeUndefined();
  });
});

describe("parseMachineConfig guest", () => {
  it("reads the guest size the cgroups enforce, with Fly's shared-cpu-1x where the config says nothing", () => {
    expect(parseMachineConfig(JSON.stringify({ image: "x" })).guest).toEqual({
      cpus: 1,
      cpuKind: "shared",
      memoryMb: 256,
    });
    const guest = { cpus: 2, cpu_kind: "performance", memory_mb: 4096 };
    expect(parseMachineConfig(JSON.stringify({ image: "x", guest })).guest).toEqual({
      cpus: 2,
      cpuKind: "performance",
      memoryMb: 4096,
    });
  });

  it("reads init.swap_size_mb (fly.toml swap_size_mb) as the guest's swap", () => {
    const init = { swap_size_mb: 512 };
    expect(parseMachineConfig(JSON.stringify({ image: "x", init })).guest).toMatchObject({ swapMb: 512 });
    expect(
      parseMachineConfig(JSON.stringify({ image: "x", init: { swap_size_mb: null } })).guest,
    ).not.toHaveProperty("swapMb");
  });
});

describe("parseMachineConfig mounts", () => {
  it("keeps the mounts of a volume (with their auto-extend settings) and leaves out unresolved ones", () => {
    const extend = { extend_threshold_percent: 80, add_size_gb: 2, size_gb_limit: 10 };
    const cfg = parseMachineConfig(
      JSON.stringify({
        image: "x",
        mounts: [
          { volume: "vol_0000000000000001", path: "/data", name: "data", ...extend },
          { name: "logs", path: "/logs" },
        ],
      }),
    );
    expect(cfg.mounts).toEqual([{ volume: "vol_0000000000000001", path: "/data", name: "data", ...extend }]);
    expect(parseMachineConfig('{"image":"x"}').mounts).toEqual([]);
  });
});

describe("imageEnv", () => {
  it("splits at the first =, keeps empty values, and a later line wins", () => {
    expect(imageEnv(["A=1", "B=x=y", "C=", "A=2", "D"])).toEqual({ A: "2", B: "x=y", C: "", D: "" });
    expect(imageEnv(undefined)).toEqual({});
  });
});

describe("imageRun", () => {
  it("merges the image's Env under Fly's variables, under config.env; uses WorkingDir and USER", () => {
    const m = machine({ image: ref, env: { NODE_ENV: "staging", EXTRA: "1" } });
    const run = imageRun(
      m,
      parseMachineConfig(m.configJson),
      image({
        Env: ["PATH=/usr/local/bin:/usr/bin", "NODE_ENV=production", "FLY_REGION=nowhere", "GREETING=hi"],
        Cmd: ["node", "server.js"],
        WorkingDir: "/app",
        User: "node",
      }),
      "host",
    );
    expect(run.cmd).toEqual(["node", "server.js"]);
    expect(run.cwd).toBe("/app");
    expect(run.env).toEqual({
      PATH: "/usr/local/bin:/usr/bin",
      NODE_ENV: "staging",
      GREETING: "hi",
      EXTRA: "1",
      FLY_APP_NAME: "hello",
      FLY_MACHINE_ID: "m1",
      FLY_ALLOC_ID: "m1",
      FLY_REGION: "ams",
      FLY_IMAGE_REF: ref,
      FLY_MACHINE_VERSION: "v1",
      FLY_PROCESS_GROUP: "app",
    });
    expect(run.sandbox).toEqual({
      image: "hello@sha256:abc",
      lowers: ["/layers/top", "/layers/base"],
      user: "node",
      network: "host",
    });
    // On the host's network the driver allocates the port.
    expect(run.port).toBeUndefined();
    expect(run.imageRef).toBe(ref);
  });

  it("defaults: a standard PATH, / as the folder, root as the user", () => {
    const m = machine({ image: ref });
    const run = imageRun(m, parseMachineConfig(m.configJson), image({ Entrypoint: ["/hello"] }), "host");
    expect(run.cmd).toEqual(["/hello"]);
    expect(run.cwd).toBe("/");
    expect(run.env.PATH).toBe("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    expect(run.sandbox?.user).toBe("");
  });

  it("in its own network namespace, listens on the service's internal port (else EXPOSE, else 8080)", () => {
    const withService = machine({ image: ref, services: [{ internal_port: 3000 }] });
    expect(
      imageRun(withService, parseMachineConfig(withService.configJson), image({ Cmd: ["x"] }), "netns").port,
    ).toBe(3000);
    const bare = machine({ image: ref });
    const cfg = parseMachineConfig(bare.configJson);
    expect(imageRun(bare, cfg, image({ Cmd: ["x"], ExposedPorts: { "5000/tcp": {} } }), "netns").port).toBe(
      5000,
    );
    expect(imageRun(bare, cfg, image({ Cmd: ["x"] }), "netns").port).toBe(8080);
  });

  it("refuses an image with nothing to run, saying what to set", () => {
    const m = machine({ image: ref });
    expect(() => imageRun(m, parseMachineConfig(m.configJson), image({}), "host")).toThrow(
      /set config\.init\.cmd/,
    );
  });

  it("refuses a relative WorkingDir", () => {
    const m = machine({ image: ref });
    expect(() =>
      imageRun(m, parseMachineConfig(m.configJson), image({ Cmd: ["x"], WorkingDir: "app" }), "host"),
    ).toThrow(ImageRunError);
  });
});

describe("resolveRun of an OCI image", () => {
  const pulls: string[] = [];
  const images: ImageSource = {
    async pull(r) {
      pulls.push(r);
      return image({ Cmd: ["node", "server.js"] });
    },
  };

  it("pulls the image and returns a sandboxed run", async () => {
    const run = await resolveRun(machine({ image: ref, init: { cmd: ["node", "other.js"] } }), {
      sandbox: { ok: true, network: "host" },
      images,
    });
    expect(pulls).toEqual([ref]);
    expect(run.cmd).toEqual(["node", "other.js"]);
    expect(run.sandbox?.image).toBe("hello@sha256:abc");
  });

  it("fails with what the host is missing, before pulling anything", async () => {
    pulls.length = 0;
    const reason = "the sandbox driver cannot run here: bubblewrap is not installed";
    await expect(
      resolveRun(machine({ image: ref }), { sandbox: { ok: false, reason }, images }),
    ).rejects.toThrow(`image ${ref} cannot run on this host: ${reason}`);
    expect(pulls).toEqual([]);
  });

  it("passes the registry's error on", async () => {
    const failing: ImageSource = {
      pull: () => Promise.reject(new Error("image hello:v9 is not in Hangar's registry")),
    };
    await expect(
      resolveRun(machine({ image: "hello:v9" }), { sandbox: { ok: true, network: "host" }, images: failing }),
    ).rejects.toThrow("image hello:v9 is not in Hangar's registry");
  });
});
