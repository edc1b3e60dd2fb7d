import { describe, expect, it } from "vitest";
import { MachineConfigSchema } from "./machine-config.js";
import {
  machineConfigFromApp,
  processGroups,
  releaseCommandGuest,
  UnknownProcessGroupError,
} from "./machine-from-app.js";
import { parseAppConfig } from "./parse-app-config.js";
import { proxyHttpOptions } from "./proxy-options.js";

const IMAGE = "registry.hangar.local/web@sha256:0123";

function app(text: string) {
  return parseAppConfig(text, "hangar.toml").config;
}

const LAUNCHED = app(`app = "web"
primary_region = "local"
kill_signal = "SIGTERM"
kill_timeout = 10

[env]
  GREETING = "hi"

[http_service]
  internal_port = 3000
  force_https = false
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0
  [http_service.concurrency]
    type = "connections"
    soft_limit = 20
  [[http_service.checks]]
    grace_period = "2s"
    interval = "5s"
    timeout = "2s"
    method = "GET"
    path = "/"
    headers = { Host = "web.internal" }
`);

describe("machineConfigFromApp", () => {
  it("turns http_service into the proxy's 80/443 service with its checks", () => {
    const config = machineConfigFromApp(LAUNCHED, IMAGE, { release: 4 });
    expect(config).toEqual({
      image: IMAGE,
      env: { GREETING: "hi", FLY_PROCESS_GROUP: "app", PRIMARY_REGION: "local" },
      services: [
        {
          protocol: "tcp",
          internal_port: 3000,
          ports: [
            { port: 80, handlers: ["http"], force_https: false },
            { port: 443, handlers: ["http", "tls"] },
          ],
          concurrency: { type: "connections", soft_limit: 20 },
          autostop: "stop",
          autostart: true,
          min_machines_running: 0,
          checks: [
            {
              type: "http",
              interval: "5s",
              timeout: "2s",
              grace_period: "2s",
              method: "GET",
              path: "/",
              headers: [{ name: "Host", values: ["web.internal"] }],
            },
          ],
        },
      ],
      stop_config: { signal: "SIGTERM", timeout: "10s" },
      metadata: { fly_process_group: "app", hangar_release: "4" },
    });
    expect(MachineConfigSchema.safeParse(config).success).toBe(true);
  });

  const MULTI = app(`app = "multi"
swap_size_mb = 256

[processes]
  web = "node server.js --port '8080'"
  worker = "node worker.js"

[http_service]
  internal_port = 8080
  processes = ["web"]

[[services]]
  internal_port = 9000
  processes = ["worker"]
  [[services.ports]]
    port = 9000
  [[services.tcp_checks]]
    interval = 15
  [[services.http_checks]]
    path = "/ready"

[checks.db]
  type = "tcp"
  port = 5432
  processes = ["worker"]

[[vm]]
  size = "performance-2x"
  processes = ["worker"]
[[vm]]
  memory = "1gb"

[mounts]
  source = "data"
  destination = "/data"
  processes = ["worker"]

[[restart]]
  policy = "never"
  processes = ["worker"]

[metrics]
  port = 9091
  path = "/metrics"

[[statics]]
  guest_path = "/app/public"
  url_prefix = "/static"
`);

  it("gives each process group its command, services, checks, guest, mounts and restart", () => {
    expect(processGroups(MULTI)).toEqual(["web", "worker"]);
    const web = machineConfigFromApp(MULTI, IMAGE, { processGroup: "web" });
    expect(web.init).toEqual({ cmd: ["node", "server.js", "--port", "8080"], swap_size_mb: 256 });
    expect(web.services?.map((s) => s.internal_port)).toEqual([8080]);
    expect(web.checks).toBeUndefined();
    expect(web.guest).toEqual({ cpu_kind: "shared", cpus: 1, memory_mb: 1024 });
    expect(web.mounts).toBeUndefined();
    expect(web.restart).toBeUndefined();
    expect(web.metadata).toEqual({ fly_process_group: "web" });
    expect(web.metrics).toEqual({ port: 9091, path: "/metrics" });
    expect(web.statics).toEqual([{ guest_path: "/app/public", url_prefix: "/static" }]);

    const worker = machineConfigFromApp(MULTI, IMAGE, { processGroup: "worker" });
    expect(worker.init?.cmd).toEqual(["node", "worker.js"]);
    expect(worker.services).toEqual([
      {
        protocol: "tcp",
        internal_port: 9000,
        ports: [{ port: 9000 }],
        checks: [
          // A bare number in a service check is milliseconds to flyctl (its patches.go _patchCheck).
          { type: "tcp", interval: "15ms" },
          { type: "http", path: "/ready" },
        ],
      },
    ]);
    expect(worker.checks).toEqual({ db: { type: "tcp", port: 5432 } });
    expect(worker.guest).toEqual({ cpu_kind: "performance", cpus: 2, memory_mb: 4096 });
    expect(worker.mounts).toEqual([{ name: "data", path: "/data" }]);
    expect(worker.restart).toEqual({ policy: "no" });
    for (const config of [web, worker]) expect(MachineConfigSchema.safeParse(config).success).toBe(true);
  });

  it("defaults to the first process group and refuses one that is not defined", () => {
    expect(machineConfigFromApp(MULTI, IMAGE).metadata).toEqual({ fly_process_group: "web" });
    expect(() => machineConfigFromApp(MULTI, IMAGE, { processGroup: "cron" })).toThrow(
      UnknownProcessGroupError,
    );
  });

  it("builds a bare machine from an empty config", () => {
    expect(machineConfigFromApp(app(""), IMAGE)).toEqual({
      image: IMAGE,
      env: { FLY_PROCESS_GROUP: "app" },
      metadata: { fly_process_group: "app" },
    });
  });
});

describe("host_dedication_id", () => {
  it("is each [[vm]]'s default, and a deploy's (a release's) config sets it on the guest as flyctl's deploy does", () => {
    const { config } = parseAppConfig('app = "a"\nhost_dedication_id = "team-a"\n', "fly.toml");
    expect(machineConfigFromApp(config, "img").guest).toBeUndefined();
    expect(machineConfigFromApp(config, "img", { release: 3 }).guest).toEqual({
      host_dedication_id: "team-a",
    });
    const withVm = parseAppConfig(
      'app = "a"\nhost_dedication_id = "team-a"\n[[vm]]\n  size = "shared-cpu-2x"\n',
      "fly.toml",
    );
    expect(machineConfigFromApp(withVm.config, "img").guest).toMatchObject({
      cpus: 2,
      host_dedication_id: "team-a",
    });
    expect(machineConfigFromApp(withVm.config, "img", { release: 3 }).guest).toMatchObject({
      cpus: 2,
      host_dedication_id: "team-a",
    });
  });
});

describe("releaseCommandGuest", () => {
  const big = { cpu_kind: "performance" as const, cpus: 1, memory_mb: 2048 };
  const small = { cpu_kind: "shared" as const, cpus: 1, memory_mb: 256 };

  it("takes [deploy] release_command_vm as flyctl reads a [[vm]]: the size, then memory, then fields", () => {
    const config = app(`app = "a"
[[vm]]
  size = "shared-cpu-1x"
[deploy]
  release_command = "migrate"
  [deploy.release_command_vm]
    size = "performance-1x"
    memory = "4gb"
`);
    expect(releaseCommandGuest(config, [small])).toEqual({
      cpu_kind: "performance",
      cpus: 1,
      memory_mb: 4096,
    });
    const noSize = app(`app = "a"
[deploy.release_command_vm]
  memory = "2gb"
`);
    // No size: shared-cpu-1x's preset, then the memory (flyctl's computeToGuest).
    expect(releaseCommandGuest(noSize, [])).toEqual({ cpu_kind: "shared", cpus: 1, memory_mb: 2048 });
  });

  it("without it, the default group's machine with the most memory; with none, shared-cpu-2x, not [[vm]]", () => {
    const config = app(`app = "a"
[[vm]]
  size = "performance-4x"
[deploy]
  release_command = "migrate"
`);
    expect(releaseCommandGuest(config, [small, big, small])).toEqual(big);
    expect(releaseCommandGuest(config, [])).toEqual({ cpu_kind: "shared", cpus: 2, memory_mb: 512 });
  });

  it("carries the top-level host_dedication_id in every case", () => {
    const config = app(`app = "a"
host_dedication_id = "team-a"
`);
    expect(releaseCommandGuest(config, [small])).toEqual({ ...small, host_dedication_id: "team-a" });
    expect(releaseCommandGuest(config, []).host_dedication_id).toBe("team-a");
  });
});

describe("http_options", () => {
  it("carries compress and idle_timeout into every port, as flyctl does, for the proxy to read back", () => {
    const { config } = parseAppConfig(
      [
        'app = "a"',
        "[http_service]",
        "  internal_port = 8080",
        "  [http_service.http_options]",
        "    compress = true",
        "    idle_timeout = 600",
        "[[services]]",
        "  internal_port = 9000",
        "  [[services.ports]]",
        "    port = 9000",
        "    handlers = ['http']",
        "    http_options = { compress = false, idle_timeout = 30 }",
        "",
      ].join("\n"),
      "fly.toml",
    );
    const machine = machineConfigFromApp(config, IMAGE);
    const options = machine.services?.map((s) => s.ports?.map((p) => p.http_options));
    expect(options).toEqual([
      [
        { compress: true, idle_timeout: 600 },
        { compress: true, idle_timeout: 600 },
      ],
      [{ compress: false, idle_timeout: 30 }],
    ]);
    // The machine config as the gateway takes and stores it, then as the proxy's route table reads it.
    const stored = MachineConfigSchema.parse(JSON.parse(JSON.stringify(machine)));
    expect(proxyHttpOptions(JSON.stringify(stored))).toEqual({ compress: true, idleTimeout: 600 });
  });

  it("refuses in a machine config an idle_timeout that is not a uint32, as Fly's Machines API (fly-go) does", () => {
    const withIdle = (idle_timeout: unknown) => ({
      image: IMAGE,
      services: [
        { internal_port: 8080, ports: [{ port: 80, handlers: ["http"], http_options: { idle_timeout } }] },
      ],
    });
    expect(MachineConfigSchema.safeParse(withIdle(600)).success).toBe(true);
    expect(MachineConfigSchema.safeParse(withIdle(0xffff_ffff)).success).toBe(true);
    for (const bad of [-1, 1.5, "600", 0x1_0000_0000]) {
      expect(MachineConfigSchema.safeParse(withIdle(bad)).success, String(bad)).toBe(false);
    }
  });
});
