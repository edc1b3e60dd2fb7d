import { describe, expect, it } from "vitest";
import {
  MachineCheckWithoutCommandError,
  machineChecksFor,
  TEST_MACHINE_GROUP,
  testMachineConfig,
} from "./machine-checks.js";
import { parseAppConfig } from "./parse-app-config.js";

function config(toml: string) {
  return parseAppConfig(toml, "fly.toml").config;
}

const app = config(`
app = "checked"
primary_region = "ord"
kill_signal = "SIGTERM"
kill_timeout = 20

[env]
  LEVEL = "app"
  SHARED = "app"

[processes]
  web = "node server.js"
  worker = "node worker.js"

[http_service]
  internal_port = 8080
  processes = ["web"]
  [[http_service.machine_checks]]
    command = ["curl", "-f", "http://[$FLY_TEST_MACHINE_IP]:8080/healthz"]
    image = "curlimages/curl"
    kill_timeout = "5s"

[[services]]
  internal_port = 9000
  protocol = "tcp"
  [[services.machine_checks]]
    command = ["sh", "-c", "nc -z $FLY_TEST_MACHINE_IP 9000"]

[[machine_checks]]
  command = ["./smoke.sh"]
  entrypoint = ["/bin/sh"]
`);

const tested = {
  config: {
    image: "registry.local/checked:v2",
    env: { SHARED: "machine", FLY_PROCESS_GROUP: "web" },
    init: { entrypoint: ["/docker-entrypoint.sh"] },
    guest: { cpu_kind: "shared" as const, cpus: 2, memory_mb: 512 },
  },
  privateIp: "fdaa:0:1::3",
};

describe("machineChecksFor", () => {
  it("gathers the checks of the group's services, those of services for every group, then the top level", () => {
    expect(machineChecksFor(app, "web").map((c) => c.command?.[0])).toEqual(["curl", "sh", "./smoke.sh"]);
    // http_service is web's only; [[services]] names no group, so it is every group's (as flyctl).
    expect(machineChecksFor(app, "worker").map((c) => c.command?.[0])).toEqual(["sh", "./smoke.sh"]);
    expect(machineChecksFor(config('app = "plain"\n'), "app")).toEqual([]);
  });
});

describe("testMachineConfig", () => {
  it("runs the check's command in its own image against the tested machine's address", () => {
    const [curl] = machineChecksFor(app, "web");
    expect(testMachineConfig(app, curl as never, tested)).toEqual({
      image: "curlimages/curl",
      init: {
        cmd: ["curl", "-f", "http://[$FLY_TEST_MACHINE_IP]:8080/healthz"],
        entrypoint: ["/docker-entrypoint.sh"],
      },
      env: {
        LEVEL: "app",
        SHARED: "machine",
        FLY_TEST_COMMAND: "1",
        FLY_PROCESS_GROUP: TEST_MACHINE_GROUP,
        PRIMARY_REGION: "ord",
        FLY_TEST_MACHINE_IP: "fdaa:0:1::3",
      },
      restart: { policy: "no" },
      dns: { skip_registration: true },
      // Its own image: the check's kill settings only, not the app's.
      stop_config: { timeout: "5s" },
      metadata: { fly_process_group: TEST_MACHINE_GROUP },
    });
  });

  it("uses the tested machine's image, the check's entrypoint and the app's kill settings without an image", () => {
    const smoke = machineChecksFor(app, "web")[2];
    const c = testMachineConfig(app, smoke as never, tested);
    expect(c.image).toBe("registry.local/checked:v2");
    expect(c.init).toEqual({ cmd: ["./smoke.sh"], entrypoint: ["/bin/sh"] });
    expect(c.stop_config).toEqual({ signal: "SIGTERM", timeout: "20s" });
  });

  it("refuses a check without a command, as flyctl does", () => {
    const noCommand = config('app = "x"\n[[machine_checks]]\n  image = "alpine"\n');
    const [check] = machineChecksFor(noCommand, "app");
    expect(() => testMachineConfig(noCommand, check as never, tested)).toThrow(
      MachineCheckWithoutCommandError,
    );
  });
});
