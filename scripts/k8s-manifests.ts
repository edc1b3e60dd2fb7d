// The Hangar services' Kubernetes objects in deploy/k8s/base/services/, generated from the tables in
// code: each service's settings (scripts/service-configs.ts), its NATS user (the permission table in
// libs/service/src/nats-permissions.ts) and its connections (scripts/service-connections.ts).
// `pnpm k8s` writes them (scripts/k8s.ts); tests/deploy/k8s-services.test.ts fails when they are stale.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { natsUserName, placeholderAuthorization, SERVICE_USERS } from "@hangar/service";
import { stringify } from "yaml";
import { SERVICE_CONFIGS } from "./service-configs.js";
import {
  CONNECTIONS,
  type Connection,
  HANGAR_SERVICES,
  type HangarService,
  HOST_NETWORK,
  INFRA,
  PEER_BLOCKS,
  type Peer,
  PORTS,
} from "./service-connections.js";

const root = fileURLToPath(new URL("..", import.meta.url));
export const K8S_BASE = join(root, "deploy", "k8s", "base");
export const SERVICES_DIR = join(K8S_BASE, "services");
export const NATS_AUTHORIZATION = join(K8S_BASE, "nats", "auth", "authorization.conf");

/** Where every image of the base comes from; overlays rewrite it (kustomize `images:`). */
export const IMAGE_REGISTRY = "ghcr.io/hangar-platform";
/** The image tag: the services' version. */
export const IMAGE_TAG = (
  JSON.parse(readFileSync(join(root, "services", "gateway", "package.json"), "utf8")) as { version: string }
).version;

/** Where a pod finds its NATS seed: the Secret nats-creds' key `<user>.nk`, mounted alone. */
export const NATS_CREDS_DIR = "/etc/hangar/nats";
/** The host agents' folder on the node (hostPath): machines, volumes, layers, and the agent's seed. */
export const HOST_DIR = "/var/lib/hangar";
export const HOST_AGENT_SEED = `${HOST_DIR}/nats/host-agent.nk`;
/**
 * HANGAR_HOST_AGENT_CONTROL_SOURCES: the pods' IPv4 block (the proxy and the gateway reach machines
 * from it). PLACEHOLDER: kind's default pod network; set the cluster's in the overlay.
 */
export const POD_CIDR = "10.244.0.0/16";

/** The control-plane Deployments (2 replicas each); the proxy and the host agents are DaemonSets. */
export const DEPLOYMENTS: readonly HangarService[] = HANGAR_SERVICES.filter(
  (s) => s !== "proxy" && s !== "host-agent",
);
export const REPLICAS = 2;
/** Pods that must run as root, privileged: machines' sandboxes (crun, cgroups, mounts, nftables). */
export const PRIVILEGED: readonly HangarService[] = ["host-agent", "builder"];
export const RUN_AS = 10001;

/** The Secrets the services read, besides nats-creds: made by secretGenerator, placeholders in the base. */
export const KEYS_SECRET = "hangar-keys";
export const NATS_CREDS_SECRET = "nats-creds";
export const POSTGRES_SECRET = "postgres-credentials";

type Obj = Record<string, unknown>;

const nameLabel = (name: string) => ({ "app.kubernetes.io/name": name });
const labels = (name: string, component: string) => ({
  ...nameLabel(name),
  "app.kubernetes.io/component": component,
});

function opsPort(service: HangarService): number {
  return service === "host-agent" ? PORTS.hostAgentOps : PORTS.ops;
}

/** Settings read from Secrets, by service (env valueFrom.secretKeyRef). */
function secretEnv(service: HangarService): Obj[] {
  const schema = SERVICE_CONFIGS[service].schema.shape as Record<string, unknown>;
  const fromKeys = (key: string): Obj => ({
    name: key,
    valueFrom: { secretKeyRef: { name: KEYS_SECRET, key } },
  });
  const out: Obj[] = [];
  if ("HANGAR_GATEWAY_TOKEN_KEY" in schema) out.push(fromKeys("HANGAR_GATEWAY_TOKEN_KEY"));
  if ("HANGAR_SECRETS_KEY" in schema) out.push(fromKeys("HANGAR_SECRETS_KEY"));
  if ("HANGAR_DATABASE_URL" in schema) {
    for (const key of ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"])
      out.push({ name: key, valueFrom: { secretKeyRef: { name: POSTGRES_SECRET, key } } });
    // Kubernetes expands $(VAR) of variables defined before it: the password must be URL-safe.
    out.push({
      name: "HANGAR_DATABASE_URL",
      value: `postgres://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres:${PORTS.postgres}/$(POSTGRES_DB)`,
    });
  }
  return out;
}

/** Each service's own settings in its pod (the shared ones come from the ConfigMap hangar-config). */
export function serviceEnv(service: HangarService): Obj[] {
  const config = SERVICE_CONFIGS[service];
  const plain: Record<string, string | number> = {
    HANGAR_HOME: HOST_DIR,
    [config.opsPortKey]: opsPort(service),
  };
  const field = (name: string, fieldPath: string): Obj => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  const fields: Obj[] = [];
  switch (service) {
    case "gateway":
      plain.HANGAR_GATEWAY_PORT = PORTS.gatewayApi;
      break;
    case "proxy":
      plain.HANGAR_PROXY_PORT = PORTS.proxyHttp;
      fields.push(field("HANGAR_PROXY_ID", "metadata.name"));
      break;
    case "builder":
      plain.HANGAR_BUILDER_DIR = `${HOST_DIR}/builder`;
      break;
    case "host-agent":
      fields.push(
        field("HANGAR_HOST_AGENT_NODE_NAME", "spec.nodeName"),
        field("HANGAR_HOST_AGENT_ADDRESS", "status.hostIP"),
      );
      plain.HANGAR_HOST_AGENT_STATE_DIR = `${HOST_DIR}/host`;
      plain.HANGAR_HOST_AGENT_TUNNEL_PORT = PORTS.hostAgentTunnel;
      plain.HANGAR_HOST_AGENT_CONTROL_SOURCES = POD_CIDR;
      break;
    default:
      break;
  }
  plain.HANGAR_NATS_CREDS =
    service === "host-agent" ? HOST_AGENT_SEED : `${NATS_CREDS_DIR}/${natsUserName(service)}.nk`;
  // toEnv: only this service's names compile, as in scripts/platform.ts.
  const env = config.toEnv(plain as never);
  return [...fields, ...Object.entries(env).map(([name, value]) => ({ name, value })), ...secretEnv(service)];
}

function resources(service: HangarService): Obj {
  const r = (cpuReq: string, memReq: string, cpu: string, mem: string) => ({
    requests: { cpu: cpuReq, memory: memReq },
    limits: { cpu, memory: mem },
  });
  // RUN steps run in the pod's cgroup: HANGAR_BUILDER_CONCURRENCY (2) builds of HANGAR_BUILDER_CPUS (2)
  // and HANGAR_BUILDER_MEMORY_MB (4096) each, and the builder itself.
  if (service === "builder") return r("500m", "1Gi", "5", "10Gi");
  if (service === "host-agent") return r("250m", "512Mi", "2", "2Gi");
  if (service === "gateway" || service === "proxy") return r("200m", "256Mi", "2", "1Gi");
  return r("100m", "192Mi", "1", "512Mi");
}

function ports(service: HangarService): Obj[] {
  const ops = { name: "ops", containerPort: opsPort(service) };
  if (service === "gateway") return [{ name: "api", containerPort: PORTS.gatewayApi }, ops];
  if (service === "proxy") return [{ name: "http", containerPort: PORTS.proxyHttp }, ops];
  if (service === "host-agent") return [ops, { name: "tunnel", containerPort: PORTS.hostAgentTunnel }];
  return [ops];
}

function container(service: HangarService): Obj {
  const privileged = PRIVILEGED.includes(service);
  return {
    name: service,
    image: `${IMAGE_REGISTRY}/${service}:${IMAGE_TAG}`,
    ports: ports(service),
    envFrom: [{ configMapRef: { name: "hangar-config" } }],
    env: serviceEnv(service),
    resources: resources(service),
    securityContext: privileged
      ? // Machines' (and RUN steps') sandboxes: crun, cgroups, overlay and loop mounts, network namespaces.
        { privileged: true, runAsUser: 0, runAsNonRoot: false }
      : { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
    // /health is ready once NATS is connected and the streams are replayed: a start may replay for minutes.
    startupProbe: { httpGet: { path: "/health", port: "ops" }, periodSeconds: 2, failureThreshold: 300 },
    readinessProbe: { httpGet: { path: "/health", port: "ops" }, periodSeconds: 5, failureThreshold: 2 },
    // Liveness asks only that the process serves: /health fails while NATS is away, and restarting every
    // replica then would not bring NATS back.
    livenessProbe: { tcpSocket: { port: "ops" }, periodSeconds: 20, failureThreshold: 3 },
    volumeMounts: [
      ...(service === "host-agent"
        ? [{ name: "host", mountPath: HOST_DIR, mountPropagation: "Bidirectional" }]
        : [
            { name: "nats-creds", mountPath: NATS_CREDS_DIR, readOnly: true },
            { name: "data", mountPath: HOST_DIR },
            { name: "tmp", mountPath: "/tmp" },
          ]),
    ],
  };
}

function podSpec(service: HangarService): Obj {
  const privileged = PRIVILEGED.includes(service);
  const user = natsUserName(service, service === "host-agent" ? "x" : undefined);
  const volumes =
    service === "host-agent"
      ? [{ name: "host", hostPath: { path: HOST_DIR, type: "DirectoryOrCreate" } }]
      : [
          {
            name: "nats-creds",
            // Only this service's seed: a pod cannot read another service's.
            secret: {
              secretName: NATS_CREDS_SECRET,
              defaultMode: 0o440,
              items: [{ key: `${user}.nk`, path: `${user}.nk` }],
            },
          },
          { name: "data", emptyDir: service === "builder" ? { sizeLimit: "20Gi" } : { sizeLimit: "1Gi" } },
          { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
        ];
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    ...(HOST_NETWORK.includes(service) ? { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" } : {}),
    securityContext: privileged
      ? { seccompProfile: { type: "Unconfined" } }
      : {
          runAsNonRoot: true,
          runAsUser: RUN_AS,
          runAsGroup: RUN_AS,
          fsGroup: RUN_AS,
          seccompProfile: { type: "RuntimeDefault" },
        },
    ...(service === "host-agent" || service === "proxy"
      ? {}
      : {
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    topologyKey: "kubernetes.io/hostname",
                    labelSelector: { matchLabels: nameLabel(service) },
                  },
                },
              ],
            },
          },
        }),
    containers: [container(service)],
    volumes,
  };
}

function workload(service: HangarService): Obj {
  const component = service === "host-agent" ? "host" : service === "proxy" ? "edge" : "control-plane";
  const template = { metadata: { labels: labels(service, component) }, spec: podSpec(service) };
  const metadata = { name: service, labels: labels(service, component) };
  if (DEPLOYMENTS.includes(service)) {
    return {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata,
      spec: {
        replicas: REPLICAS,
        selector: { matchLabels: nameLabel(service) },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template,
      },
    };
  }
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata,
    spec: {
      selector: { matchLabels: nameLabel(service) },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template,
    },
  };
}

function pdb(service: HangarService): Obj {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: service, labels: nameLabel(service) },
    spec: { maxUnavailable: 1, selector: { matchLabels: nameLabel(service) } },
  };
}

function loadBalancer(service: "gateway" | "proxy"): Obj {
  const port =
    service === "gateway"
      ? { name: "api", port: PORTS.gatewayApi, targetPort: "api" }
      : { name: "http", port: 80, targetPort: "http" };
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: service, labels: nameLabel(service) },
    spec: {
      type: "LoadBalancer",
      // The proxy: each node's own proxy, keeping the client's address. The gateway: any replica.
      externalTrafficPolicy: service === "proxy" ? "Local" : "Cluster",
      selector: nameLabel(service),
      ports: [port],
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// NetworkPolicies

const isPod = (peer: Peer): peer is HangarService | (typeof INFRA)[number] =>
  (HANGAR_SERVICES as readonly string[]).includes(peer) || (INFRA as readonly string[]).includes(peer);
/** Pods under NetworkPolicies: the namespace's pods but the host agents (hostNetwork). */
const governed = (peer: Peer): boolean => isPod(peer) && !HOST_NETWORK.includes(peer as HangarService);
/** Where traffic of a peer comes from, as a policy sees it: a host-network pod is its node. */
const asSource = (peer: Peer): Peer => (HOST_NETWORK.includes(peer as HangarService) ? "nodes" : peer);

function policyPeer(peer: Peer): Obj {
  if (peer === "kube-dns") {
    return {
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
      podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
    };
  }
  if (peer === "nodes" || peer === "machines" || peer === "internet" || peer === "clients")
    return { ipBlock: PEER_BLOCKS[peer] };
  return { podSelector: { matchLabels: nameLabel(peer) } };
}

function policyPorts(c: Connection): Obj[] | undefined {
  if (c.to === "kube-dns")
    return [
      { protocol: "UDP", port: PORTS.dns },
      { protocol: "TCP", port: PORTS.dns },
    ];
  return c.ports?.map((port) => ({ protocol: "TCP", port }));
}

function rule(direction: "ingress" | "egress", c: Connection): Obj {
  const peer = policyPeer(direction === "ingress" ? asSource(c.from) : c.to);
  const ports = policyPorts(c);
  return { [direction === "ingress" ? "from" : "to"]: [peer], ...(ports ? { ports } : {}) };
}

function policy(name: string, pod: Peer, ingress: Connection[], egress: Connection[], extra: Obj = {}): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, labels: { ...nameLabel(String(pod)), ...extra } },
    spec: {
      podSelector: { matchLabels: nameLabel(String(pod)) },
      policyTypes: [...(ingress.length > 0 ? ["Ingress"] : []), ...(egress.length > 0 ? ["Egress"] : [])],
      ...(ingress.length > 0 ? { ingress: ingress.map((c) => rule("ingress", c)) } : {}),
      ...(egress.length > 0 ? { egress: egress.map((c) => rule("egress", c)) } : {}),
    },
  };
}

/** The label an overlay selects the `nodes` policies by, to put in its nodes' block. */
export const NODES_POLICY_LABEL = "hangar.dev/peer-nodes";

/**
 * Default deny, then per pod one policy for its connections; the ones with the `nodes` block are
 * policies of their own (one rule each, labelled), so that an overlay patches that block in all of them.
 */
export function networkPolicies(): Obj[] {
  const out: Obj[] = [
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "default-deny" },
      spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
    },
  ];
  const pods = [...HANGAR_SERVICES, ...INFRA].filter(governed);
  for (const pod of pods) {
    const isNodes = (c: Connection, direction: "ingress" | "egress") =>
      direction === "ingress" ? asSource(c.from) === "nodes" : c.to === "nodes";
    const ingress = CONNECTIONS.filter((c) => c.to === pod);
    const egress = CONNECTIONS.filter((c) => c.from === pod);
    out.push(
      policy(
        pod,
        pod,
        ingress.filter((c) => !isNodes(c, "ingress")),
        egress.filter((c) => !isNodes(c, "egress")),
      ),
    );
    for (const c of ingress.filter((c) => isNodes(c, "ingress")))
      out.push(policy(`${pod}-from-nodes`, pod, [c], [], { [NODES_POLICY_LABEL]: "ingress" }));
    for (const c of egress.filter((c) => isNodes(c, "egress")))
      out.push(policy(`${pod}-to-nodes`, pod, [], [c], { [NODES_POLICY_LABEL]: "egress" }));
  }
  return out.filter((p) => {
    const spec = p.spec as { policyTypes: string[] };
    return spec.policyTypes.length > 0;
  });
}

// ---------------------------------------------------------------------------------------------------
// Files

const yamlDocs = (objects: Obj[]) => objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
const header = (what: string) =>
  `# GENERATED by \`pnpm k8s\` (scripts/k8s-manifests.ts) from ${what}.\n` +
  "# Do not edit: change the tables in code and run it again (tests/deploy/k8s-services.test.ts fails\n" +
  "# when this file is stale).\n";

/** The kustomization of base/services: the generated files and the Secrets they read. */
function kustomization(files: string[]): Obj {
  const placeholder = "PLACEHOLDER-replace-in-the-overlay";
  return {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    resources: files,
    secretGenerator: [
      {
        // Each service's NATS seed, `<user>.nk`, as `scripts/nats-security.ts credentials <dir>` writes
        // them (<dir>/<user>.nk). Placeholders here, which no nats-server accepts; an overlay replaces
        // the Secret (behavior: replace) from files kept out of git.
        name: NATS_CREDS_SECRET,
        literals: [...DEPLOYMENTS, "proxy" as const].map((s) => `${natsUserName(s)}.nk=${placeholder}`),
      },
      {
        // The gateway's token root key and the secrets master key (32 random bytes in base64 each:
        // openssl rand -base64 32). The placeholders fail the services' checks: they do not start.
        name: KEYS_SECRET,
        literals: [`HANGAR_GATEWAY_TOKEN_KEY=${placeholder}`, `HANGAR_SECRETS_KEY=${placeholder}`],
      },
    ],
  };
}

/** Every generated file, path (under the repo) to content. */
export function k8sFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  const names: string[] = [];
  for (const service of HANGAR_SERVICES) {
    const objects = [workload(service)];
    if (DEPLOYMENTS.includes(service)) objects.push(pdb(service));
    if (service === "gateway" || service === "proxy") objects.push(loadBalancer(service));
    const file = `${service}.yaml`;
    names.push(file);
    files[join(SERVICES_DIR, file)] =
      header("the services' settings (scripts/service-configs.ts)") + yamlDocs(objects);
  }
  names.push("network-policies.yaml");
  files[join(SERVICES_DIR, "network-policies.yaml")] =
    header("the connection table, scripts/service-connections.ts") + yamlDocs(networkPolicies());
  files[join(SERVICES_DIR, "kustomization.yaml")] =
    header("scripts/k8s-manifests.ts") + yamlDocs([kustomization(names)]);
  files[NATS_AUTHORIZATION] =
    "# GENERATED by `pnpm k8s` from the permission table (libs/service/src/nats-permissions.ts): every\n" +
    "# service user and the operator, with their real permissions, under public keys nobody holds a seed\n" +
    "# for, so this file admits nobody. An environment replaces the Secret nats-auth with its own users:\n" +
    "#   node --conditions=source --import tsx scripts/nats-security.ts credentials <dir> <host id>...\n" +
    placeholderAuthorization(SERVICE_USERS);
  return files;
}
