// scripts/podman-play.ts: what podman 4.3 `kube play` is given for the kinds it cannot run (pure).
import { describe, expect, it } from "vitest";
import { expandEnvRefs } from "../../scripts/kube-play.js";
import {
  forPlay,
  inlineEnvFrom,
  type KubeObject,
  podmanPlan,
  podNames,
  podsOf,
  readinessOf,
  withHostAliases,
} from "../../scripts/podman-play.js";

const pod = (extra: Record<string, unknown> = {}) => ({
  metadata: { labels: { app: "x" } },
  spec: {
    containers: [
      {
        name: "c",
        image: "i",
        ports: [{ name: "ops", containerPort: 4290 }],
        readinessProbe: { httpGet: { path: "/health", port: "ops" } },
      },
    ],
    volumes: [
      {
        name: "creds",
        secret: { secretName: "nats-creds", defaultMode: 288, items: [{ key: "a.nk", path: "a.nk" }] },
      },
    ],
    ...extra,
  },
});
const obj = (kind: string, name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "apps/v1",
  kind,
  metadata: { name },
  spec: { selector: { matchLabels: { app: "x" } }, template: pod(), ...spec },
});

describe("podmanPlan", () => {
  it("plays a StatefulSet as a Deployment with a PVC per claim template, and a DaemonSet as one pod", () => {
    const plan = podmanPlan([
      obj("StatefulSet", "nats", {
        replicas: 1,
        volumeClaimTemplates: [
          { metadata: { name: "data" }, spec: { resources: { requests: { storage: "1Gi" } } } },
        ],
      }),
      obj("DaemonSet", "proxy", {}),
      obj("Deployment", "gateway", { replicas: 2 }),
    ]);
    expect(plan.workloads.map((w) => [w.name, w.from, w.replicas, w.deployment.kind])).toEqual([
      ["nats", "StatefulSet", 1, "Deployment"],
      ["proxy", "DaemonSet", 1, "Deployment"],
      ["gateway", "Deployment", 2, "Deployment"],
    ]);
    expect(plan.claims.map((c) => [c.kind, c.metadata.name])).toEqual([
      ["PersistentVolumeClaim", "data-nats"],
    ]);
    const [nats, , gateway] = plan.workloads;
    if (!nats || !gateway) throw new Error("missing workloads");
    const volumes = (nats.deployment.spec as { template: { spec: { volumes: unknown[] } } }).template.spec
      .volumes;
    expect(volumes).toContainEqual({ name: "data", persistentVolumeClaim: { claimName: "data-nats" } });
    expect(podNames(gateway)).toEqual(["gateway-pod-0", "gateway-pod-1"]);
  });

  it("turns a Secret into a ConfigMap (volumes) and a podman secret of JSON (env), and its volumes into ConfigMap volumes", () => {
    const plan = podmanPlan([
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "nats-creds" },
        data: { "a.nk": Buffer.from("SUA").toString("base64") },
      },
      obj("Deployment", "gateway", { replicas: 2 }),
    ]);
    expect(plan.configMaps).toEqual([
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "nats-creds" }, data: { "a.nk": "SUA" } },
    ]);
    expect(JSON.parse(plan.secrets[0]?.json ?? "{}")).toEqual({
      "a.nk": Buffer.from("SUA").toString("base64"),
    });
    const [gateway] = plan.workloads;
    if (!gateway) throw new Error("no workload");
    const spec = (gateway.deployment.spec as { template: { spec: { volumes: unknown[] } } }).template.spec;
    expect(spec.volumes).toEqual([
      {
        name: "creds",
        configMap: { name: "nats-creds", items: [{ key: "a.nk", path: "a.nk" }], defaultMode: 288 },
      },
    ]);
  });

  it("leaves out Services and policies, the DaemonSets run as host processes, and refuses a kind it has no stand-in for", () => {
    const plan = podmanPlan(
      [
        { apiVersion: "v1", kind: "Service", metadata: { name: "gateway" } },
        { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "gateway" } },
        obj("DaemonSet", "host-agent", {}),
      ],
      { hostProcesses: ["host-agent"] },
    );
    expect(plan.workloads).toEqual([]);
    expect(plan.leftOut).toHaveLength(3);
    expect(() => podmanPlan([{ apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "c" } }])).toThrow(
      /CronJob c/,
    );
  });

  it("adds Service names as host aliases and finds the readiness probe's port by name", () => {
    const [w] = podmanPlan([obj("Deployment", "gateway", { replicas: 2 })]).workloads;
    if (!w) throw new Error("no workload");
    const aliased = withHostAliases(w, { nats: "10.89.0.2", postgres: "10.89.0.3" });
    expect(
      (aliased.spec as { template: { spec: { hostAliases: unknown } } }).template.spec.hostAliases,
    ).toEqual([
      { ip: "10.89.0.2", hostnames: ["nats"] },
      { ip: "10.89.0.3", hostnames: ["postgres"] },
    ]);
    expect(readinessOf(w)).toEqual({ path: "/health", port: 4290 });
  });
});

describe("podsOf", () => {
  it("plays each replica as its own Pod, with its own emptyDirs and the Service names as host aliases", () => {
    const d = obj("Deployment", "gateway", { replicas: 2 });
    const t = (d.spec as { template: ReturnType<typeof pod> }).template;
    t.spec.volumes = [...t.spec.volumes, { name: "tmp", emptyDir: {} } as never];
    (t.spec.containers[0] as Record<string, unknown>).volumeMounts = [
      { name: "tmp", mountPath: "/tmp" },
      { name: "creds", mountPath: "/etc/hangar/nats" },
    ];
    const [w] = podmanPlan([d]).workloads;
    if (!w) throw new Error("no workload");
    const pods = podsOf(w, { nats: "10.89.0.2" });
    expect(pods.map((p) => [p.kind, p.metadata.name])).toEqual([
      ["Pod", "gateway-pod-0"],
      ["Pod", "gateway-pod-1"],
    ]);
    const spec = pods[1]?.spec as {
      hostAliases: unknown;
      volumes: { name: string }[];
      containers: { volumeMounts: { name: string }[] }[];
    };
    expect(spec.hostAliases).toEqual([{ ip: "10.89.0.2", hostnames: ["nats"] }]);
    expect(spec.volumes.map((v) => v.name)).toEqual(["creds", "gateway-pod-1-tmp"]);
    expect(spec.containers[0]?.volumeMounts.map((m) => m.name)).toEqual(["gateway-pod-1-tmp", "creds"]);
    const played = forPlay(pods[0] as KubeObject).spec as { containers: Record<string, unknown>[] };
    expect(played.containers[0]?.ports).toBeUndefined();
  });
});

describe("inlineEnvFrom", () => {
  it("lets the container's own env win over envFrom, and puts pod addresses in URLs on the host's network", () => {
    const cm: KubeObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "hangar-config-abc" },
      data: { HANGAR_NATS_URL: "nats://nats:4222", HANGAR_BIND_HOST: "0.0.0.0" },
    };
    const p = (hostNetwork: boolean): KubeObject => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "proxy-pod-0" },
      spec: {
        hostNetwork,
        containers: [
          {
            name: "proxy",
            envFrom: [{ configMapRef: { name: "hangar-config-abc" } }],
            env: [{ name: "HANGAR_BIND_HOST", value: "127.0.0.1" }],
          },
        ],
      },
    });
    const envOf = (o: KubeObject) =>
      (o.spec as { containers: { env: { name: string; value: string }[]; envFrom?: unknown }[] })
        .containers[0];
    const onHost = envOf(inlineEnvFrom(p(true), [cm], { nats: "10.89.0.2" }));
    expect(onHost?.envFrom).toBeUndefined();
    expect(onHost?.env).toEqual([
      { name: "HANGAR_NATS_URL", value: "nats://10.89.0.2:4222" },
      { name: "HANGAR_BIND_HOST", value: "127.0.0.1" },
    ]);
    expect(envOf(inlineEnvFrom(p(false), [cm], { nats: "10.89.0.2" }))?.env[0]?.value).toBe(
      "nats://nats:4222",
    );
    expect(() => inlineEnvFrom(p(false), [])).toThrow(/hangar-config-abc/);
  });
});

describe("expandEnvRefs", () => {
  it("expands $(VAR) from earlier literal and Secret env, as Kubernetes does and podman does not", () => {
    const p: KubeObject = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "pm-pod-0" },
      spec: {
        containers: [
          {
            name: "c",
            env: [
              { name: "POSTGRES_USER", valueFrom: { secretKeyRef: { name: "pg", key: "POSTGRES_USER" } } },
              { name: "HOST", value: "postgres" },
              { name: "URL", value: "postgres://$(POSTGRES_USER)@$(HOST)/$(UNKNOWN)" },
            ],
          },
        ],
      },
    };
    const out = expandEnvRefs(p, new Map([["pg", { POSTGRES_USER: "hangar" }]]));
    const env = (out.spec as { containers: { env: { name: string; value?: string }[] }[] }).containers[0]
      ?.env;
    expect(env?.find((e) => e.name === "URL")?.value).toBe("postgres://hangar@postgres/$(UNKNOWN)");
  });
});
