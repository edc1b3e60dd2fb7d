import { describe, expect, it } from "vitest";
import { dirImagePath } from "./image.js";
import { GUEST_DEFAULTS, MachineConfigSchema } from "./machine-config.js";
import { validate } from "./validate.js";

const check = (config: unknown) => validate(MachineConfigSchema, config);

function parsed(config: unknown) {
  const result = check(config);
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

function message(config: unknown): string {
  const result = check(config);
  if (result.ok) throw new Error("expected a validation failure");
  return result.message;
}

const fullConfig = {
  image: "registry.hangar.local/web:v3",
  env: { PORT: "8080" },
  guest: { cpu_kind: "performance", cpus: 2, memory_mb: 4096, kernel_args: ["quiet"] },
  init: {
    cmd: ["node", "server.js"],
    entrypoint: ["/bin/sh", "-c"],
    exec: ["/app"],
    tty: false,
    swap_size_mb: 512,
  },
  services: [
    {
      protocol: "tcp",
      internal_port: 8080,
      ports: [
        { port: 80, handlers: ["http"], force_https: true },
        { port: 443, handlers: ["tls", "http"], tls_options: { alpn: ["h2"] } },
      ],
      concurrency: { type: "connections", soft_limit: 20, hard_limit: 25 },
      autostop: true,
      autostart: true,
      min_machines_running: 0,
      checks: [{ type: "http", port: 8080, path: "/health", method: "GET", interval: "10s", timeout: "2s" }],
    },
  ],
  checks: {
    alive: {
      type: "tcp",
      port: 8080,
      interval: "15s",
      timeout: "2s",
      grace_period: "5s",
      headers: [{ name: "X-Check", values: ["1"] }],
    },
  },
  restart: { policy: "on-failure", max_retries: 3 },
  metadata: { fly_process_group: "app" },
  auto_destroy: false,
  stop_config: { timeout: "30s", signal: "SIGINT" },
  mounts: [{ volume: "vol_123", path: "/data", size_gb: 1 }],
  files: [{ guest_path: "/etc/app.json", raw_value: "e30=" }],
  processes: [{ cmd: ["worker"], env: { ROLE: "worker" }, user: "app" }],
  schedule: "daily",
  dns: { skip_registration: true },
  statics: [{ guest_path: "/app/public", url_prefix: "/static" }],
  metrics: { port: 9091, path: "/metrics" },
  standbys: ["m-1"],
};

describe("MachineConfigSchema", () => {
  it("accepts a config that uses every field, unchanged", () => {
    expect(parsed(fullConfig)).toEqual(fullConfig);
  });

  it("fills the guest with Fly's defaults: shared, 1 cpu, 256 MB", () => {
    expect(GUEST_DEFAULTS).toEqual({ cpu_kind: "shared", cpus: 1, memory_mb: 256 });
    expect(parsed({ image: "nginx" }).guest).toEqual(GUEST_DEFAULTS);
    expect(parsed({ image: "nginx", guest: null }).guest).toEqual(GUEST_DEFAULTS);
    expect(parsed({ image: "nginx", guest: { memory_mb: 1024 } }).guest).toEqual({
      cpu_kind: "shared",
      cpus: 1,
      memory_mb: 1024,
    });
  });

  it("keeps unknown fields, at the top and nested", () => {
    const config = parsed({
      image: "nginx",
      containers: [{ name: "a" }],
      guest: { persist_rootfs: "always" },
    });
    expect(config.containers).toEqual([{ name: "a" }]);
    expect(config.guest.persist_rootfs).toBe("always");
  });

  it("takes null for optional fields, as Go clients send", () => {
    const config = parsed({
      image: "nginx",
      env: null,
      services: [{ internal_port: 80, force_instance_key: null }],
    });
    expect(config.env).toBeNull();
  });

  it("requires an image", () => {
    expect(message({})).toBe("image: required, expected string");
    expect(message({ image: "" })).toBe("image: expected a non-empty image reference without whitespace");
    expect(message({ image: "nginx latest" })).toBe(
      "image: expected a non-empty image reference without whitespace",
    );
  });

  it("accepts dir: images with an absolute path only", () => {
    expect(parsed({ image: "dir:/srv/app" }).image).toBe("dir:/srv/app");
    expect(message({ image: "dir:srv/app" })).toBe("image: expected an absolute path after dir:");
    expect(message({ image: "dir:" })).toBe("image: expected an absolute path after dir:");
    expect(dirImagePath("dir:/srv/app")).toBe("/srv/app");
    expect(dirImagePath("nginx:latest")).toBeUndefined();
  });

  it("names the path of a field with the wrong type", () => {
    expect(message({ image: "nginx", guest: { cpus: "2" } })).toBe(
      'guest.cpus: expected number, received "2"',
    );
    expect(message({ image: "nginx", env: { A: 1 } })).toBe("env.A: expected string, received 1");
    expect(message({ image: "nginx", services: [{ internal_port: 8080, ports: [{ port: "80" }] }] })).toBe(
      'services.0.ports.0.port: expected number, received "80"',
    );
  });

  it("checks enums, ranges and durations", () => {
    expect(message({ image: "x", restart: { policy: "sometimes" } })).toBe(
      'restart.policy: expected one of no, always, on-failure, received "sometimes"',
    );
    expect(message({ image: "x", checks: { c: { type: "grpc" } } })).toBe(
      'checks.c.type: expected one of http, tcp, received "grpc"',
    );
    expect(message({ image: "x", services: [{ internal_port: 70000 }] })).toMatch(
      /^services\.0\.internal_port: /,
    );
    expect(message({ image: "x", stop_config: { timeout: "soon" } })).toMatch(
      /^stop_config\.timeout: expected a duration/,
    );
    expect(message({ image: "x", services: [{ autostop: "sleep" }] })).toMatch(/^services\.0\.autostop: /);
  });

  it("wants files with an absolute guest path and some content", () => {
    expect(message({ image: "x", files: [{ guest_path: "/a" }] })).toBe(
      "files.0: expected one of raw_value or secret_name",
    );
    expect(message({ image: "x", files: [{ guest_path: "a", secret_name: "S" }] })).toBe(
      "files.0.guest_path: expected an absolute path",
    );
  });

  it("normalises a numeric stop signal to its name", () => {
    expect(parsed({ image: "x", stop_config: { signal: 2 } }).stop_config?.signal).toBe("SIGINT");
  });
});
