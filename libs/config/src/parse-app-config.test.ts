import { describe, expect, it } from "vitest";
import { AppConfigError, parseAppConfig } from "./parse-app-config.js";

// The shape of the examples in Fly's fly.toml reference, most sections at once.
const FLY_TOML = `# fly.toml app configuration file generated for fly-app-name
app = "fly-app-name"
primary_region = "ord"
kill_signal = "SIGINT"
kill_timeout = "5s"
swap_size_mb = 512
console_command = "/code/manage.py shell"

[experimental]
  auto_rollback = true

[build]
  dockerfile = "Dockerfile.prod"
  build-target = "runtime"
  ignorefile = ".dockerignore"
  [build.args]
    NODE_VERSION = "20"
    WORKERS = 4

[deploy]
  strategy = "bluegreen"
  wait_timeout = "5m"
  max_unavailable = 0.33

[env]
  PORT = "8080"
  LOG_LEVEL = "info"

[processes]
  app = "node server.js --port 8080"
  worker = "node worker.js"

[http_service]
  internal_port = 8080
  force_https = true
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0
  processes = ["app"]
  [http_service.concurrency]
    type = "requests"
    soft_limit = 200
    hard_limit = 250
  [[http_service.checks]]
    grace_period = "10s"
    interval = "30s"
    method = "GET"
    timeout = "5s"
    path = "/"
    headers = { X-Forwarded-Proto = "https" }

[[services]]
  http_checks = []
  internal_port = 9000
  processes = ["worker"]
  protocol = "tcp"
  script_checks = []
  [services.concurrency]
    hard_limit = 25
    soft_limit = 20
    type = "connections"
  [[services.ports]]
    force_https = true
    handlers = ["http"]
    port = 80
  [[services.ports]]
    handlers = ["tls", "http"]
    port = 443
  [[services.tcp_checks]]
    grace_period = "1s"
    interval = "15s"
    restart_limit = 0
    timeout = "2s"

[mounts]
  source = "myapp_data"
  destination = "/data"
  processes = ["app"]

[checks]
  [checks.status]
    port = 8080
    type = "http"
    interval = "10s"
    timeout = "2s"
    grace_period = "5s"
    method = "get"
    path = "/status"

[[vm]]
  size = "shared-cpu-2x"
  memory = "1gb"
  processes = ["app"]

[[vm]]
  cpu_kind = "performance"
  cpus = 2
  memory_mb = 4096
  processes = ["worker"]

[[statics]]
  guest_path = "/app/public"
  url_prefix = "/static"

[metrics]
  port = 9091
  path = "/metrics"

[[restart]]
  policy = "never"
  retries = 3
  processes = ["worker"]
`;

function invalid(text: string): AppConfigError {
  try {
    parseAppConfig(text, "fly.toml");
  } catch (err) {
    if (err instanceof AppConfigError) return err;
    throw err;
  }
  throw new Error("expected an AppConfigError");
}

describe("parseAppConfig", () => {
  it("parses a realistic fly.toml from Fly's reference with no warning", () => {
    const { config, warnings } = parseAppConfig(FLY_TOML, "fly.toml");
    expect(warnings).toEqual([]);
    expect(config.app).toBe("fly-app-name");
    expect(config.kill_signal).toBe("SIGINT");
    expect(config.build?.["build-target"]).toBe("runtime");
    // Numbers in [build.args] and [env] become strings, as they reach the build and the machine as text.
    expect(config.build?.args).toEqual({ NODE_VERSION: "20", WORKERS: "4" });
    expect(config.http_service?.auto_stop_machines).toBe("stop");
    expect(config.http_service?.checks?.[0]?.headers).toEqual({ "X-Forwarded-Proto": "https" });
    expect(config.services?.[0]?.ports?.map((p) => p.port)).toEqual([80, 443]);
    // A single [mounts] table is kept as a one-element list, like [[mounts]].
    expect(config.mounts).toEqual([{ source: "myapp_data", destination: "/data", processes: ["app"] }]);
    expect(config.metrics).toEqual([{ port: 9091, path: "/metrics" }]);
    expect(config.vm).toHaveLength(2);
    expect(config.checks?.status?.path).toBe("/status");
    expect(config.deploy).toEqual({ strategy: "bluegreen", wait_timeout: "5m", max_unavailable: 0.33 });
  });

  it("takes auto_stop_machines as a boolean too", () => {
    const { config } = parseAppConfig("[http_service]\nauto_stop_machines = false\n", "fly.toml");
    expect(config.http_service?.auto_stop_machines).toBe(false);
  });

  it("warns about unknown keys with their path and line, and drops them", () => {
    const text =
      'app = "web"\nfoo = 1\n\n[http_service]\n  internal_port = 8080\n  foo = "x"\n\n[[services]]\n  internal_port = 1\n  [[services.ports]]\n    port = 80\n    bogus = true\n\n[mounts]\n  source = "d"\n  destination = "/d"\n  size = 3\n';
    const { config, warnings } = parseAppConfig(text, "fly.toml");
    expect(warnings).toEqual([
      "fly.toml:2: unknown key foo (ignored)",
      "fly.toml:6: unknown key http_service.foo (ignored)",
      "fly.toml:12: unknown key services[0].ports[0].bogus (ignored)",
      "fly.toml:17: unknown key mounts.size (ignored)",
    ]);
    expect(config.http_service).toEqual({ internal_port: 8080 });
    expect(config.services?.[0]?.ports).toEqual([{ port: 80 }]);
    expect(config).not.toHaveProperty("foo");
  });

  it("warns about Fly keys Hangar does not act on", () => {
    const text =
      '[build]\n  builder = "paketobuildpacks/builder:base"\n\n[[services]]\n  internal_port = 8080\n  script_checks = []\n';
    expect(parseAppConfig(text, "fly.toml").warnings).toEqual([
      "fly.toml:2: build.builder is not supported by Hangar (ignored)",
    ]);
  });

  it("loads the [experimental] keys flyctl reads and does nothing with without a warning; warns about lazy_load_images, as flyctl", () => {
    const text =
      '[experimental]\n  enable_consul = true\n  enable_etcd = true\n  auto_rollback = true\n  [experimental.attached.secrets.export]\n    DATABASE_URL = "postgres://db.flycast"\n';
    expect(parseAppConfig(text, "fly.toml").warnings).toEqual([]);
    expect(parseAppConfig("[experimental]\n  lazy_load_images = true\n", "fly.toml").warnings).toEqual([
      "fly.toml:2: experimental.lazy_load_images is not supported by Hangar (ignored)",
    ]);
  });

  it("warns about a [[statics]] tigris_bucket, which the proxy does not serve, and not about the others", () => {
    const text =
      '[[statics]]\n  guest_path = "/app/public"\n  url_prefix = "/static"\n\n[[statics]]\n  url_prefix = "/assets"\n  tigris_bucket = "my-bucket"\n';
    const { config, warnings } = parseAppConfig(text, "fly.toml");
    expect(warnings).toEqual(["fly.toml:7: statics[1].tigris_bucket is not supported by Hangar (ignored)"]);
    expect(config.statics).toHaveLength(2);
  });

  it("names the key and line of each wrong type", () => {
    const text =
      'app = "web"\n\n[http_service]\n  force_https = true\n  auto_stop_machines = "sometimes"\n\n  internal_port = "8080"\n\n[[vm]]\n  size = "huge"\n  cpus = 1.5\n';
    const err = invalid(text);
    expect(err.code).toBe("invalid");
    expect(err.issues).toEqual([
      {
        path: "http_service.auto_stop_machines",
        line: 5,
        message: 'expected a boolean or one of "off", "stop", "suspend", got "sometimes"',
      },
      {
        path: "http_service.internal_port",
        line: 7,
        message: "expected a number, got string",
      },
      {
        path: "vm[0].size",
        line: 10,
        message: expect.stringMatching(/^expected a VM size: shared-cpu-1x, .*, got "huge"$/),
      },
      { path: "vm[0].cpus", line: 11, message: "expected an integer, got 1.5" },
    ]);
    expect(err.message.split("\n")[1]).toBe(
      "fly.toml:7: http_service.internal_port: expected a number, got string",
    );
  });

  it("reports bad durations and missing required keys", () => {
    const text =
      'app = "web"\nkill_signal = true\n\n[[http_service.checks]]\n  interval = "often"\n\n[[mounts]]\n  source = "data"\n';
    const messages = invalid(text).message.split("\n");
    expect(messages).toContain(
      "fly.toml:5: http_service.checks[0].interval: " +
        'expected a duration such as "10s" or "1m30s", or a number of seconds, got "often"',
    );
    expect(messages).toContain("fly.toml:7: mounts[0].destination: required, expected a string");
    expect(messages.some((m) => m.startsWith("fly.toml:2: kill_signal: expected one of"))).toBe(true);
  });

  // flyctl passes any kill_signal string to the machines' stop_config (flyd decides): the file loads.
  it("loads a kill_signal Hangar cannot stop machines with, warning that the default is used; an empty one is none", () => {
    const odd = parseAppConfig('app = "web"\nkill_signal = "SIGWINCH"\n', "fly.toml");
    expect(odd.config.kill_signal).toBeUndefined();
    expect(odd.warnings).toEqual([
      expect.stringMatching(
        /^fly\.toml:2: kill_signal "SIGWINCH" is not one of SIGABRT, .*SIGUSR2: machines are stopped with SIGINT, the default \(ignored\)$/,
      ),
    ]);
    const empty = parseAppConfig('app = "web"\nkill_signal = ""\n', "fly.toml");
    expect(empty.config.kill_signal).toBeUndefined();
    expect(empty.warnings).toEqual([]);
  });

  // flyctl loads `app` as any string: fly-apps/fly-laravel's templates ship "$APP_NAME$", 0x2E/fusion's
  // fly.toml "{APP_NAME}", old apps have underscores. `fly deploy -a <app>` deploys them all.
  it.each(["{APP_NAME}", "$APP_NAME$", "<YOUR APP NAME GOES HERE>", "surface_error-staging"])(
    "loads app = %j as written, with no warning, as flyctl does",
    (app) => {
      const { config, warnings } = parseAppConfig(`app = ${JSON.stringify(app)}\n`, "fly.toml");
      expect(config.app).toBe(app);
      expect(warnings).toEqual([]);
    },
  );

  it("reports TOML syntax errors as file:line:column", () => {
    const err = invalid('app = "web"\n\n[http_service]\n  internal_port = = 8080\n');
    expect(err.code).toBe("syntax");
    expect(err.issues[0]).toMatchObject({ path: "", line: 4, column: expect.any(Number) });
    expect(err.message).toMatch(/^fly\.toml:4:\d+: /);
  });
});

describe("http_options", () => {
  it("takes response headers, pristine, compress and idle_timeout with no warning, and warns about h2_backend", () => {
    const { config, warnings } = parseAppConfig(
      [
        'app = "a"',
        "[http_service]",
        "  internal_port = 8080",
        "  [http_service.http_options]",
        "    compress = true",
        "    idle_timeout = 600",
        "    h2_backend = true",
        "  [http_service.http_options.response]",
        "    pristine = true",
        "    [http_service.http_options.response.headers]",
        '      X-Frame-Options = "DENY"',
        "      X-Powered-By = false",
        "",
      ].join("\n"),
      "fly.toml",
    );
    expect(warnings).toEqual([
      "fly.toml:7: http_service.http_options.h2_backend is not supported by Hangar (ignored)",
    ]);
    expect(config.http_service?.http_options).toMatchObject({ compress: true, idle_timeout: 600 });
    const framing = parseAppConfig(
      'app = "a"\n[http_service.http_options.response.headers]\n  Content-Length = "2"\n',
      "fly.toml",
    );
    expect(framing.warnings).toEqual([
      "fly.toml:3: http_service.http_options.response.headers.Content-Length: the proxy frames responses itself; this header is not set or removed (ignored)",
    ]);
    expect(config.http_service?.http_options?.response).toEqual({
      pristine: true,
      headers: { "X-Frame-Options": "DENY", "X-Powered-By": false },
    });
  });

  it("refuses a compress that is not a boolean and an idle_timeout that is not a uint32 of seconds, as flyctl does", () => {
    const err = invalid(
      [
        'app = "a"',
        "[http_service.http_options]",
        '  compress = "yes"',
        "  idle_timeout = -1",
        "[[services]]",
        "  internal_port = 8080",
        "  [[services.ports]]",
        "    port = 80",
        "    http_options = { idle_timeout = 4294967296 }",
        "  [[services.ports]]",
        "    port = 81",
        "    http_options = { idle_timeout = 1.5, compress = 1 }",
        "",
      ].join("\n"),
    );
    expect(err.issues.map((i) => `${i.line}: ${i.path}`).sort()).toEqual([
      "12: services[0].ports[1].http_options.compress",
      "12: services[0].ports[1].http_options.idle_timeout",
      "3: http_service.http_options.compress",
      "4: http_service.http_options.idle_timeout",
      "9: services[0].ports[0].http_options.idle_timeout",
    ]);
    // The most a uint32 holds loads, with no warning.
    const { config, warnings } = parseAppConfig(
      'app = "a"\n[http_service.http_options]\n  idle_timeout = 4294967295\n',
      "fly.toml",
    );
    expect(config.http_service?.http_options?.idle_timeout).toBe(4294967295);
    expect(warnings).toEqual([]);
  });
});
