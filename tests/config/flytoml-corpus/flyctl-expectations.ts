// What flyctl's own tests (internal/appconfig, commit in README.md) state about the files in flyctl/,
// transcribed into Hangar's shapes: the parsed config (AppConfig, snake_case as in fly.toml) and the
// machine config (the Machines API's MachineConfig). Each entry names the Go test it comes from. Fields
// of flyctl's expectation that Hangar does not derive are named in `notCompared`, with why.

/** Top-level keys of the parsed config flyctl's test states, each compared exactly; null is "absent". */
export interface ParsedExpectation {
  goTest: string;
  file: string;
  config: Record<string, unknown>;
  notCompared?: string[];
}

/** The fields of the machine config flyctl's test states for one process group; null is "absent". */
export interface MachineExpectation {
  goTest: string;
  file: string;
  /** The process group; flyctl's default group when absent. */
  group?: string;
  machine: Record<string, unknown>;
  /** The test compares the whole config: every compared field not in `machine` must be absent. */
  whole?: boolean;
  notCompared?: string[];
}

/** flyctl's ProcessNames and DefaultProcessName of a file (TestProcessNames). */
export interface ProcessGroupExpectation {
  goTest: string;
  file: string;
  groups: string[];
  defaultGroup: string;
}

/** The machine config fields the comparison covers: every one Hangar derives from fly.toml. */
export const MACHINE_FIELDS = [
  "env",
  "init",
  "guest",
  "services",
  "checks",
  "mounts",
  "restart",
  "stop_config",
  "metrics",
  "statics",
] as const;

const httpServicePorts = (forceHttps: boolean) => [
  { port: 80, handlers: ["http"], ...(forceHttps ? { force_https: true } : {}) },
  { port: 443, handlers: ["http", "tls"] },
];

const machineCheck = {
  command: ["curl", "https://fly.io"],
  entrypoint: ["/bin/sh"],
  image: "curlimages/curl",
  kill_signal: "SIGKILL",
  kill_timeout: "5s",
};

export const PARSED: ParsedExpectation[] = [
  {
    goTest: "TestLoadTOMLAppConfigReferenceFormat",
    file: "full-reference.toml",
    config: {
      app: "foo",
      kill_signal: "SIGTERM",
      kill_timeout: "3s",
      swap_size_mb: 512,
      primary_region: "sea",
      console_command: "/bin/bash",
      host_dedication_id: "06031957",
      vm: [
        {
          size: "shared-cpu-1x",
          memory: "8gb",
          cpu_kind: "performance",
          cpus: 8,
          memory_mb: 8192,
          gpus: 2,
          gpu_kind: "a100-pcie-40gb",
          host_dedication_id: "isolated-xxx",
          kernel_args: ["quiet"],
          processes: ["app"],
        },
        { memory_mb: 4096 },
      ],
      experimental: {
        cmd: ["cmd"],
        entrypoint: ["entrypoint"],
        exec: ["exec"],
        auto_rollback: true,
        enable_consul: true,
        enable_etcd: true,
      },
      restart: [{ policy: "always", retries: 3, processes: ["web"] }],
      build: {
        builder: "dockerfile",
        image: "foo/fighter",
        builtin: "whatisthis",
        dockerfile: "Dockerfile",
        ignorefile: ".gitignore",
        "build-target": "target",
        buildpacks: ["packme", "well"],
        settings: { foo: "bar", other: 2 },
        args: { param1: "value1", param2: "value2" },
      },
      deploy: {
        max_unavailable: 0.2,
        release_command: "release command",
        release_command_timeout: "3m",
        release_command_vm: { size: "performance-2x", memory: "8g" },
      },
      env: { FOO: "BAR" },
      metrics: [
        { port: 9999, path: "/metrics" },
        { port: 9998, path: "/metrics", processes: ["web"] },
      ],
      http_service: {
        internal_port: 8080,
        force_https: true,
        auto_start_machines: false,
        auto_stop_machines: "off",
        min_machines_running: 0,
        concurrency: { hard_limit: 10, soft_limit: 4 },
        tls_options: {
          alpn: ["h2", "http/1.1"],
          versions: ["TLSv1.2", "TLSv1.3"],
          default_self_signed: false,
        },
        http_options: {
          compress: true,
          idle_timeout: 600,
          response: {
            headers: {
              "fly-request-id": false,
              "fly-wasnt-here": "yes, it was",
              "multi-valued": ["value1", "value2"],
            },
          },
        },
        checks: [
          {
            interval: "1m21s",
            timeout: "7s",
            grace_period: "2s",
            method: "GET",
            path: "/",
            protocol: "https",
            tls_skip_verify: true,
            tls_server_name: "sni2.com",
            headers: { "My-Custom-Header": "whatever" },
          },
        ],
        machine_checks: [machineCheck],
      },
      machine_checks: [machineCheck],
      statics: [
        {
          guest_path: "/path/to/statics",
          url_prefix: "/static-assets",
          tigris_bucket: "example-bucket",
          index_document: "index.html",
        },
      ],
      files: [
        { guest_path: "/path/to/hello.txt", raw_value: "aGVsbG8gd29ybGQK" },
        { guest_path: "/path/to/secret.txt", secret_name: "SUPER_SECRET" },
        { guest_path: "/path/to/config.yaml", local_path: "/local/path/config.yaml", processes: ["web"] },
      ],
      mounts: [
        {
          source: "data",
          destination: "/data",
          initial_size: "30gb",
          snapshot_retention: 17,
          scheduled_snapshots: true,
        },
      ],
      processes: { web: "run web", task: "task all day" },
      checks: {
        status: {
          port: 2020,
          type: "http",
          interval: "10s",
          timeout: "2s",
          grace_period: "27s",
          method: "GET",
          path: "/status",
          protocol: "https",
          tls_skip_verify: true,
          tls_server_name: "sni3.com",
          headers: { "Content-Type": "application/json", Authorization: "super-duper-secret" },
        },
      },
      services: [
        {
          internal_port: 8081,
          protocol: "tcp",
          processes: ["app"],
          auto_start_machines: false,
          auto_stop_machines: "off",
          min_machines_running: 1,
          concurrency: { type: "requests", hard_limit: 22, soft_limit: 13 },
          ports: [
            {
              port: 80,
              start_port: 100,
              end_port: 200,
              handlers: ["https"],
              force_https: true,
              http_options: { idle_timeout: 600 },
            },
          ],
          tcp_checks: [{ interval: "21s", timeout: "4s", grace_period: "1s" }],
          http_checks: [
            {
              interval: "1m21s",
              timeout: "7s",
              grace_period: "2s",
              method: "GET",
              path: "/",
              protocol: "https",
              tls_skip_verify: true,
              tls_server_name: "sni.com",
              headers: { "My-Custom-Header": "whatever" },
            },
            { interval: "33s", timeout: "10s", method: "POST", path: "/check2" },
          ],
          machine_checks: [machineCheck],
        },
      ],
    },
    notCompared: [
      'deploy.strategy "rolling-eyes" and http_service.concurrency.type "donuts": flyctl keeps them (and refuses them at deploy); Hangar drops them with a warning',
      'durations are kept as written: "1m21s" where flyctl\'s test writes the same duration as 81s',
    ],
  },
  { goTest: "TestLoadTOMLAppConfigWithAppName", file: "app-name.toml", config: { app: "test-app" } },
  {
    goTest: "TestLoadTOMLAppConfigWithBuilderNameAndArgs",
    file: "build-with-args.toml",
    config: { build: { builder: "builder/name", args: { A: "B", C: "D" } } },
  },
  {
    goTest: "TestLoadTOMLAppConfigWithImage",
    file: "image.toml",
    config: { build: { image: "image/name" } },
  },
  {
    goTest: "TestLoadTOMLAppConfigWithDockerfile",
    file: "docker.toml",
    config: { build: { dockerfile: "./Dockerfile" } },
  },
  {
    goTest: "TestLoadTOMLAppConfigWithCompose",
    file: "compose.toml",
    config: { build: { compose: { file: "docker-compose.yml" } } },
  },
  {
    goTest: "TestLoadTOMLAppConfigWithEmptyService",
    file: "services-emptysection.toml",
    config: { services: null },
  },
  {
    goTest: "TestLoadTOMLAppConfigServicePorts",
    file: "services-ports.toml",
    config: {
      services: [
        {
          protocol: "tcp",
          internal_port: 8080,
          ports: [
            {
              port: 80,
              tls_options: { alpn: ["h2", "http/1.1"], versions: ["TLSv1.2", "TLSv1.3"] },
              http_options: {
                compress: true,
                response: {
                  headers: {
                    "fly-request-id": false,
                    "fly-wasnt-here": "yes, it was",
                    "multi-valued": ["value1", "value2"],
                  },
                },
              },
            },
            { port: 82, handlers: ["proxy_proto"], proxy_proto_options: { version: "v2" } },
          ],
        },
      ],
    },
  },
  {
    goTest: "TestLoadTOMLAppConfigServiceMulti",
    file: "services-multi.toml",
    config: {
      services: [
        {
          protocol: "tcp",
          internal_port: 8081,
          concurrency: { type: "requests", hard_limit: 22, soft_limit: 13 },
        },
        {
          protocol: "tcp",
          internal_port: 9999,
          concurrency: { type: "connections", hard_limit: 10, soft_limit: 8 },
        },
      ],
    },
  },
  {
    goTest: "TestLoadTOMLAppConfigExperimental",
    file: "experimental-alt.toml",
    config: {
      app: "foo",
      kill_timeout: "3s",
      metrics: [{ path: "/foo", port: 9000 }],
      experimental: { cmd: ["cmd"], entrypoint: ["entrypoint"], exec: ["exec"] },
    },
  },
  {
    goTest: "TestLoadTOMLAppConfigMountsArray",
    file: "mounts-array.toml",
    config: { app: "foo", mounts: [{ source: "pg_data", destination: "/data" }] },
  },
  {
    goTest: "TestLoadTOMLAppConfigFormatQuirks",
    file: "format-quirks.toml",
    config: {
      app: "foo",
      vm: [{ memory: "512" }],
      mounts: [{ source: "data", destination: "/data", initial_size: "200", snapshot_retention: 10 }],
    },
  },
  {
    goTest: "TestLoadTOMLAppConfigEnvList",
    file: "env-list.toml",
    config: { env: { FOO: "BAR", TWO: "2", TRUE: "true" } },
  },
  {
    goTest: "TestLoadTOMLAppConfigOldFormat",
    file: "old-format.toml",
    config: {
      app: "foo",
      build: { "build-target": "thalayer" },
      env: { FOO: "STRING", BAR: "123" },
      mounts: [{ source: "data", destination: "/data" }],
      metrics: [{ port: 9999, path: "/metrics" }],
      processes: null,
      experimental: null,
      services: [
        {
          internal_port: 8080,
          auto_stop_machines: false,
          ports: [{ port: 80, handlers: ["http"] }],
          concurrency: { type: "requests", hard_limit: 23, soft_limit: 12 },
          tcp_checks: [
            { interval: "10s", timeout: "2s" },
            { interval: "20s", timeout: "3s" },
          ],
          http_checks: [
            { interval: "30s", timeout: "4s", headers: { origin: "http://localhost:8000" } },
            {
              interval: "20s",
              timeout: "3s",
              headers: { "fly-healthcheck": "1", metoo: "true", astring: "string" },
            },
          ],
        },
      ],
    },
  },
  {
    goTest: "TestLoadTOMLAppConfigOldProcesses",
    file: "old-processes.toml",
    config: { app: null, processes: { web: "./web", worker: "./worker" } },
  },
  {
    goTest: "TestLoadTOMLAppConfigOldChecksFormat",
    file: "old-pg-checks.toml",
    config: { app: "foo", checks: { pg: { port: 5500, type: "http", path: "/flycheck/pg" } } },
  },
];

export const PROCESS_GROUPS: ProcessGroupExpectation[] = [
  { goTest: "TestProcessNames", file: "processes-one.toml", groups: ["web"], defaultGroup: "web" },
  {
    goTest: "TestProcessNames",
    file: "processes-multi.toml",
    groups: ["bar", "foo", "zzz"],
    defaultGroup: "bar",
  },
  {
    goTest: "TestProcessNames",
    file: "processes-multiwithapp.toml",
    groups: ["aaa", "abc", "app", "ass", "bbb"],
    defaultGroup: "app",
  },
];

export const MACHINES: MachineExpectation[] = [
  {
    goTest: "TestToMachineConfig",
    file: "tomachine.toml",
    whole: true,
    machine: {
      env: { FOO: "BAR", PRIMARY_REGION: "mia", FLY_PROCESS_GROUP: "app" },
      services: [{ protocol: "tcp", internal_port: 8080, ports: httpServicePorts(true) }],
      metrics: { port: 9999, path: "/metrics" },
      statics: [
        {
          guest_path: "/guest/path",
          url_prefix: "/url/prefix",
          tigris_bucket: "example-bucket",
          index_document: "index.html",
        },
      ],
      mounts: [{ name: "data", path: "/data" }],
      checks: {
        listening: { port: 8080, type: "tcp" },
        status: { port: 8080, type: "http", interval: "10s", timeout: "1s", path: "/status" },
      },
      stop_config: { timeout: "10s", signal: "SIGTERM" },
      init: { swap_size_mb: 512 },
      restart: { policy: "always" },
    },
    notCompared: [
      "dns.nameservers: from experimental.machine_config, which Hangar loads but does not apply (it warns)",
      "metadata fly_platform_version and fly_flyctl_version: flyctl's own",
    ],
  },
  {
    goTest: "TestToMachineConfig_Experimental",
    file: "tomachine-experimental.toml",
    machine: { init: { cmd: ["/call", "me"], entrypoint: ["/IgoFirst"], exec: ["ignore", "others"] } },
  },
  ...(
    [
      [
        "app",
        {
          init: { cmd: ["run-nginx"] },
          services: [
            { protocol: "tcp", internal_port: 8080, ports: httpServicePorts(false) },
            { protocol: "tcp", internal_port: 1111 },
          ],
          checks: { listening: { port: 8080, type: "tcp" } },
        },
      ],
      [
        "vpn",
        {
          init: { cmd: ["run-tailscale"] },
          services: [
            { protocol: "udp", internal_port: 9999 },
            { protocol: "tcp", internal_port: 1111 },
          ],
          checks: null,
        },
      ],
      [
        "foo",
        {
          init: { cmd: ["keep", "me", "alive"] },
          services: [{ protocol: "tcp", internal_port: 1111 }],
          checks: { listening: { port: 8080, type: "tcp" } },
        },
      ],
    ] as const
  ).map(([group, machine]) => ({
    goTest: "TestToMachineConfig_multiProcessGroups",
    file: "tomachine-processgroups.toml",
    group,
    machine,
  })),
  {
    goTest: "TestToMachineConfig_defaultV2flytoml",
    file: "tomachine-default-for-new-apps.toml",
    whole: true,
    machine: {
      env: { PRIMARY_REGION: "ord", FLY_PROCESS_GROUP: "app" },
      services: [{ protocol: "tcp", internal_port: 8080, ports: httpServicePorts(true) }],
      checks: { alive: { port: 8080, type: "tcp", interval: "15s", timeout: "2s", grace_period: "5s" } },
    },
  },
  ...(
    [
      [undefined, [{ name: "data", path: "/data" }]],
      ["app", [{ name: "data", path: "/data" }]],
      ["back", [{ name: "trash", path: "/trash" }]],
      ["hola", null],
    ] as const
  ).map(([group, mounts]) => ({
    goTest: "TestToReleaseMachineConfig_processGroupsAndMounts",
    file: "tomachine-mounts.toml",
    ...(group ? { group } : {}),
    machine: { mounts },
  })),
  {
    goTest: "TestToMachineConfig_services",
    file: "tomachine-services.toml",
    machine: {
      services: [
        {
          protocol: "tcp",
          internal_port: 8080,
          autostart: true,
          autostop: "stop",
          ports: httpServicePorts(true),
        },
        { protocol: "tcp", internal_port: 1000, autostart: true, autostop: "stop" },
        { protocol: "tcp", internal_port: 1001, autostart: false, autostop: "off" },
        { protocol: "tcp", internal_port: 1002, autostart: false },
        { protocol: "tcp", internal_port: 1003, autostop: "stop" },
        { protocol: "tcp", internal_port: 1004 },
      ],
    },
  },
  ...(
    [
      ["app", { cpu_kind: "shared", cpus: 2, memory_mb: 512 }],
      ["worker", { cpu_kind: "shared", cpus: 2, memory_mb: 512 }],
      ["whisper", { cpu_kind: "performance", cpus: 8, memory_mb: 65536, gpu_kind: "a100-pcie-40gb" }],
      ["isolated", { cpu_kind: "shared", cpus: 1, memory_mb: 256, host_dedication_id: "lookma-iamsolo" }],
    ] as const
  ).map(([group, guest]) => ({
    goTest: "TestToMachineConfig_compute",
    file: "tomachine-compute.toml",
    group,
    machine: { guest },
  })),
  ...(
    [
      ["app", null],
      ["woo", null],
      ["bar", { cpu_kind: "performance", cpus: 4, memory_mb: 8192 }],
    ] as const
  ).map(([group, guest]) => ({
    goTest: "TestToMachineConfig_compute_none",
    file: "tomachine-compute-nodefault.toml",
    group,
    machine: { guest },
  })),
  ...(
    [
      ["front", null],
      ["back", { cpu_kind: "shared", cpus: 1, memory_mb: 256, host_dedication_id: "specific" }],
      ["other", { cpu_kind: "shared", cpus: 4, memory_mb: 1024, host_dedication_id: "toplevel" }],
    ] as const
  ).map(([group, guest]) => ({
    goTest: "TestToMachineConfig_hostdedicationid",
    file: "tomachine-hostdedicationid.toml",
    group,
    machine: { guest },
  })),
];

/**
 * Files flyctl's tests load only to show that flyctl refuses them (its Validate, or the
 * v2UnmarshalError of TestLoadTOMLAppConfigInvalidV2): Hangar refuses them when loading, at these lines.
 */
export const REFUSED: { goTest: string; file: string; errors: string[] }[] = [
  {
    goTest: "TestLoadTOMLAppConfigInvalidV2",
    file: "always-invalid-v2.toml",
    errors: ["always-invalid-v2.toml:24: services[0].concurrency: expected a table, got 20"],
  },
  {
    goTest: "TestConfig_ValidateGroups",
    file: "validate-groups.toml",
    errors: ['validate-groups.toml:36: mounts[0].destination: expected an absolute path, got "bar"'],
  },
  {
    goTest: "TestConfig_ValidateMounts",
    file: "validate-mounts.toml",
    errors: [
      'validate-mounts.toml:12: mounts[0].initial_size: expected a size at least 1GB (sizes are rounded down to whole GB), got "15Mb"',
    ],
  },
];
