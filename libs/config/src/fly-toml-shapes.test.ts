import { describe, expect, it } from "vitest";
import { machineConfigFromApp } from "./machine-from-app.js";
import { type AppConfigError, parseAppConfig } from "./parse-app-config.js";

const load = (text: string) => parseAppConfig(text, "fly.toml");

describe("older fly.toml shapes, read as flyctl's patches.go reads them", () => {
  it("reads `processes = []` as no processes, and [[processes]] with name and command as [processes]", () => {
    expect(load('app = "a"\nprocesses = []\n').config.processes).toBeUndefined();
    const text = '[[processes]]\n  name = "web"\n  command = "bin/web"\n[[processes]]\n  name = "idle"\n';
    expect(load(text).config.processes).toEqual({ web: "bin/web", idle: "" });
  });

  it("merges [[env]] tables in order and writes values that are not strings as strings", () => {
    const text = '[[env]]\n  A = 1\n  B = true\n[[env]]\n  A = "2"\n  C = 1.5\n';
    expect(load(text).config.env).toEqual({ A: "2", B: "true", C: "1.5" });
  });

  it('writes an array in [env] as Go\'s "%v" writes it, as flyctl does', () => {
    const text = '[env]\n  HOSTS = ["a", "b"]\n  PORTS = [80, 443]\n';
    expect(load(text).config.env).toEqual({ HOSTS: "[a b]", PORTS: "[80 443]" });
  });

  it('writes a TOML date or time in [env] as Go\'s "%v" writes what go-toml decodes, as flyctl does', () => {
    const text = [
      "[env]",
      "  UTC = 2024-01-02T03:04:05Z",
      "  OFFSET = 2024-01-02T03:04:05.5+02:00",
      "  DAY = 2024-01-02",
      "  AT = 03:04:05",
      "  LOCAL = 2024-01-02T03:04:05",
      "",
    ].join("\n");
    const { config, warnings } = load(text);
    expect(warnings).toEqual([]);
    expect(config.env).toEqual({
      UTC: "2024-01-02 03:04:05 +0000 UTC",
      OFFSET: "2024-01-02 03:04:05.5 +0200 +0200",
      DAY: "2024-01-02",
      AT: "03:04:05",
      LOCAL: "2024-01-02T03:04:05",
    });
  });

  it('reads string ports, "soft,hard" concurrency and a single [services] table', () => {
    const text =
      '[services]\n  internal_port = "8080"\n  concurrency = "20,25"\n  [[services.ports]]\n    port = "443"\n';
    const service = load(text).config.services?.[0];
    expect(service?.internal_port).toBe(8080);
    expect(service?.ports?.[0]?.port).toBe(443);
    expect(service?.concurrency).toEqual({ type: "requests", soft_limit: 20, hard_limit: 25 });
  });

  // kelvinn/changedetection's fly.toml: a worker's [[services]] with `protocol = ""` and no ports.
  it('reads `protocol = ""` in [[services]] as no protocol, as Go reads an empty string field', () => {
    const text = '[[services]]\n  protocol = ""\n  processes = ["worker"]\n  auto_stop_machines = true\n';
    const { config, warnings } = load(text);
    expect(config.services?.[0]?.protocol).toBeUndefined();
    expect(config.services?.[0]?.processes).toEqual(["worker"]);
    expect(warnings).toEqual([]);
  });

  // What `fly launch` wrote in early 2024 (a generated fly.toml kept in a public uptime-kuma deploy script).
  it("reads `auto_extend_size_threshold = 0` and empty sizes in [[mounts]] as unset, as flyctl's Go zero values", () => {
    const text =
      '[[mounts]]\n  source = "kuma_data"\n  destination = "/app/data"\n  auto_extend_size_threshold = 0\n' +
      '[[mounts]]\n  source = "b"\n  destination = "/b"\n  initial_size = ""\n  auto_extend_size_increment = ""\n  auto_extend_size_limit = ""\n';
    const { config, warnings } = load(text);
    expect(config.mounts).toEqual([
      { source: "kuma_data", destination: "/app/data" },
      { source: "b", destination: "/b" },
    ]);
    expect(warnings).toEqual([]);
    const one = { ...config, mounts: config.mounts?.slice(0, 1) };
    expect(machineConfigFromApp(one, "img").mounts).toEqual([{ name: "kuma_data", path: "/app/data" }]);
  });

  it("drops empty [[services]] tables and reports a bad value at its line", () => {
    expect(load("[[services]]\n").config.services).toBeUndefined();
    expect(() => load('[[services]]\n  internal_port = 80\n  concurrency = "many"\n')).toThrow(
      "fly.toml:3: services[0].concurrency: expected a table, got string",
    );
  });

  it("reads check headers given as a list of name/value and values that are not strings", () => {
    const text =
      '[[services]]\n  internal_port = 80\n  [[services.http_checks]]\n    headers = [{ name = "Host", value = "x.dev" }, { name = "X-N", value = 3 }]\n' +
      '[checks.ready]\n  type = "http"\n  port = 80\n  headers = { X-Flag = true }\n';
    const { config } = load(text);
    expect(config.services?.[0]?.http_checks?.[0]?.headers).toEqual({ Host: "x.dev", "X-N": "3" });
    expect(config.checks?.ready?.headers).toEqual({ "X-Flag": "true" });
  });

  it('reads `grace_period = ""` as no grace period', () => {
    const text =
      '[[services]]\n  internal_port = 80\n  [[services.tcp_checks]]\n    grace_period = ""\n    interval = "5s"\n';
    expect(load(text).config.services?.[0]?.tcp_checks?.[0]).toEqual({ interval: "5s" });
  });

  it("reads cmd, entrypoint and exec given as one string as one argument", () => {
    const text = '[experimental]\n  cmd = "bin/rails server"\n  entrypoint = "/init"\n';
    const { config } = load(text);
    expect(config.experimental?.cmd).toEqual(["bin/rails server"]);
    expect(config.experimental?.entrypoint).toEqual(["/init"]);
  });

  it("drops experimental.allowed_public_ports and private_network, which old flyctl wrote and nothing reads", () => {
    const text =
      "[experimental]\n  allowed_public_ports = []\n  private_network = true\n  auto_rollback = true\n";
    const { config, warnings } = load(text);
    expect(config.experimental).toEqual({ auto_rollback: true });
    expect(warnings).toEqual([]);
  });

  it("moves experimental.kill_timeout and metrics_port/metrics_path to the top level", () => {
    const text = '[experimental]\n  kill_timeout = 30\n  metrics_port = 9091\n  metrics_path = "/m"\n';
    const { config } = load(text);
    expect(config.kill_timeout).toBe("30s");
    expect(config.metrics).toEqual([{ port: 9091, path: "/m" }]);
    expect(config.experimental).toBeUndefined();
    expect(load('[experimental]\n  metrics_path = "/m"\n').config.metrics).toEqual([{ path: "/m" }]);
  });
});

describe("the cases of flyctl's definition_test.go, written as TOML", () => {
  it('reads kill_timeout 20, 1.5 and "10s" as 20s, 1s and 10s (TestFromDefinitionKillTimeout*)', () => {
    expect(load("kill_timeout = 20\n").config.kill_timeout).toBe("20s");
    expect(load("kill_timeout = 1.5\n").config.kill_timeout).toBe("1s");
    expect(load('kill_timeout = "10s"\n').config.kill_timeout).toBe("10s");
  });

  it("reads checks as a list with names, and an empty list as none (TestFromDefinitionChecksAs*)", () => {
    const text = '[[checks]]\n  name = "pg"\n  type = "tcp"\n  port = 80\n';
    expect(load(text).config.checks).toEqual({ pg: { type: "tcp", port: 80 } });
    expect(load("checks = []\n").config.checks).toBeUndefined();
  });
});

describe("bare-number durations, as flyctl reads them", () => {
  it("reads them as milliseconds in [[services.*_checks]] and [checks], seconds in kill_timeout", () => {
    const text =
      "kill_timeout = 5\n[[services]]\n  internal_port = 80\n  [[services.tcp_checks]]\n    interval = 10000\n    timeout = 2000\n" +
      '[checks.db]\n  type = "tcp"\n  port = 5432\n  grace_period = 1500\n';
    const { config, warnings } = load(text);
    expect(config.kill_timeout).toBe("5s");
    expect(config.services?.[0]?.tcp_checks?.[0]).toEqual({ interval: "10s", timeout: "2s" });
    expect(config.checks?.db?.grace_period).toBe("1.5s");
    expect(warnings).toEqual([]);
  });

  it("reads them as nanoseconds in http_service checks and [deploy], as fly.Duration does, and says so", () => {
    const text = "[http_service]\n  internal_port = 8080\n  [[http_service.checks]]\n    interval = 10000\n";
    const { config, warnings } = load(text);
    expect(config.http_service?.checks?.[0]?.interval).toBe("10µs");
    expect(warnings).toEqual([
      'fly.toml:4: http_service.checks[0].interval = 10000 is 10µs: flyctl reads a bare number here as nanoseconds; write a duration such as "10s"',
    ]);
  });
});

describe("top-level checks", () => {
  it("take the group's http_service port when they have none, and an upper-cased method, as flyctl's do", () => {
    const text =
      '[http_service]\n  internal_port = 3000\n[checks.pg]\n  type = "http"\n  method = "get"\n  path = "/up"\n';
    expect(machineConfigFromApp(load(text).config, "img").checks).toEqual({
      pg: { type: "http", port: 3000, method: "GET", path: "/up" },
    });
  });
});

describe("values flyctl loads but refuses at deploy", () => {
  it("leaves out a top-level check of another type than http or tcp, or of none, with a warning", () => {
    const text = '[checks.etcd]\n  type = "script"\n  command = "/bin/check"\n[checks.pg]\n  port = 5500\n';
    const { config, warnings } = load(text);
    expect(config.checks).toBeUndefined();
    expect(warnings).toEqual([
      'fly.toml:1: checks.etcd type "script" is not one of http, tcp: the check is not run (ignored)',
      "fly.toml:4: checks.pg has no type: the check is not run (ignored)",
    ]);
  });

  it("ignores a deploy strategy or concurrency type Hangar does not know, with a warning", () => {
    const text =
      '[deploy]\n  strategy = "rolling-eyes"\n[http_service]\n  [http_service.concurrency]\n    type = "donuts"\n';
    const { config, warnings } = load(text);
    expect(config.deploy?.strategy).toBeUndefined();
    expect(config.http_service?.concurrency?.type).toBeUndefined();
    expect(warnings).toHaveLength(2);
  });
});

describe("[[vm]] and [[compute]]", () => {
  const text = `[processes]
  web = "bin/web"
  gpu = "bin/infer"
  worker = "bin/work"

[[vm]]
  size = "shared-cpu-2x"

[[compute]]
  memory = "64gb"
  gpu_kind = "a100-pcie-40gb"
  processes = ["gpu"]

[[vm]]
  memory = 1024
  cpus = 2
  processes = ["worker"]
`;

  it("gives each group the last [[vm]] naming it, else the first naming no group", () => {
    const { config } = load(text);
    const guest = (group: string) => machineConfigFromApp(config, "img", { processGroup: group }).guest;
    expect(guest("web")).toEqual({ cpu_kind: "shared", cpus: 2, memory_mb: 512 });
    // gpu_kind without a size starts from performance-8x, as flyctl's computeToGuest does.
    expect(guest("gpu")).toEqual({
      cpu_kind: "performance",
      cpus: 8,
      memory_mb: 65536,
      gpu_kind: "a100-pcie-40gb",
    });
    expect(guest("worker")).toEqual({ cpu_kind: "shared", cpus: 2, memory_mb: 1024 });
  });

  it("loads every VM size flyctl knows, GPU ones without a warning (placement refuses them where no host has a GPU)", () => {
    const { config, warnings } = load('[[vm]]\n  size = "l40s"\n');
    expect(machineConfigFromApp(config, "img").guest).toEqual({
      cpu_kind: "performance",
      cpus: 8,
      memory_mb: 32768,
      gpus: 1,
      gpu_kind: "l40s",
    });
    expect(warnings).toEqual([]);
  });

  it("reports a problem in a [[compute]] table at its own line and name", () => {
    const err = (() => {
      try {
        load(text.replace('memory = "64gb"', 'memory = "lots"'));
      } catch (e) {
        return e as AppConfigError;
      }
      throw new Error("expected an error");
    })();
    expect(err.message).toBe(
      'fly.toml:10: compute[0].memory: expected a size such as "512mb" or "1gb", got "lots"',
    );
  });
});
