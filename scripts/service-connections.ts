// Who talks to whom in deploy/k8s: every connection a pod of the platform opens, and the settings or
// code it comes from. deploy/k8s's NetworkPolicies are generated from this table (scripts/k8s.ts), and
// tests/deploy/k8s-services.test.ts checks it against the services' settings and the rendered
// NetworkPolicies against it: the policies allow exactly these connections, nothing else.

/** The Hangar services, in the order scripts/platform.ts starts them (its SERVICES). */
export const HANGAR_SERVICES = [
  "placement",
  "host-agent",
  "volume",
  "postgres-manager",
  "webhooks",
  "builder",
  "gateway",
  "proxy",
  "scheduler",
  "monitor",
] as const;
export type HangarService = (typeof HANGAR_SERVICES)[number];

/** The infrastructure of deploy/k8s/base the services run on, each a workload named so. */
export const INFRA = ["nats", "postgres", "otel-collector", "tempo", "prometheus", "grafana"] as const;
export type Infra = (typeof INFRA)[number];

/**
 * Peers outside the namespace's pods, addressed by IP block:
 * - `nodes`: the cluster's nodes, where the host agents run in the node's network (hostNetwork) and
 *   serve their machines, and the Kubernetes API server;
 * - `machines`: the machines' own IPv4 block (HANGAR_HOST_AGENT_MACHINE_CIDR), routed by their hosts;
 * - `internet`: public addresses (private, loopback and link-local blocks excepted);
 * - `clients`: whoever reaches a LoadBalancer Service (the gateway's API, the proxy).
 * `kube-dns` is the cluster's DNS, in kube-system.
 */
export const OUTSIDE = ["nodes", "machines", "internet", "clients", "kube-dns"] as const;
export type Outside = (typeof OUTSIDE)[number];

export type Peer = HangarService | Infra | Outside;

/** The IP blocks of the outside peers in the base; an overlay replaces `nodes` with its nodes' block. */
export const PEER_BLOCKS: Record<
  "nodes" | "machines" | "internet" | "clients",
  { cidr: string; except?: string[] }
> = {
  // PLACEHOLDER: the nodes' addresses differ per cluster (overlays/local sets kind's 172.18.0.0/16).
  nodes: { cidr: "10.0.0.0/16" },
  // HANGAR_HOST_AGENT_MACHINE_CIDR's default.
  machines: { cidr: "172.30.0.0/16" },
  internet: {
    cidr: "0.0.0.0/0",
    except: [
      "10.0.0.0/8",
      "172.16.0.0/12",
      "192.168.0.0/16",
      "127.0.0.0/8",
      "169.254.0.0/16",
      "100.64.0.0/10",
    ],
  },
  clients: { cidr: "0.0.0.0/0" },
};

/** A connection: `from` opens it to `to` on `ports` (all ports when omitted), for the reason given. */
export interface Connection {
  from: Peer;
  to: Peer;
  /** TCP ports (DNS: UDP and TCP 53); undefined: every port (a machine's services listen where they like). */
  ports?: number[];
  /** The setting the address comes from (checked against the service's schema), if any. */
  setting?: string;
  why: string;
}

/** Ports of the platform's pods in deploy/k8s. */
export const PORTS = {
  nats: 4222,
  natsCluster: 6222,
  postgres: 5432,
  otlpGrpc: 4317,
  otlpHttp: 4318,
  collectorMetrics: 8889,
  tempo: 3200,
  prometheus: 9090,
  grafana: 3000,
  gatewayApi: 4280,
  proxyHttp: 8080,
  /** Every service's ops server (/health, /metrics) in its pod. */
  ops: 4290,
  /** The host agent's ops server and tunnel listener: in the node's network, beside the kubelet. */
  hostAgentOps: 4291,
  hostAgentTunnel: 4292,
  /** The Postgres member agents' control API (HANGAR_POSTGRES_MANAGER_AGENT_PORT's default). */
  postgresMemberAgent: 5500,
  dns: 53,
  apiServer: [443, 6443],
} as const;

/** The host agent runs in the node's network: its connections come from (and go to) the `nodes` block. */
export const HOST_NETWORK: readonly HangarService[] = ["host-agent"];

function everyService(): Connection[] {
  return HANGAR_SERVICES.flatMap((s): Connection[] => [
    { from: s, to: "nats", ports: [PORTS.nats], setting: "HANGAR_NATS_URL", why: "its NATS user" },
    {
      from: s,
      to: "otel-collector",
      ports: [PORTS.otlpHttp],
      setting: "OTEL_EXPORTER_OTLP_ENDPOINT",
      why: "traces and metrics over OTLP/HTTP",
    },
  ]);
}

/** Every connection of the platform's pods. DNS (every pod to kube-dns) is listed too. */
export const CONNECTIONS: readonly Connection[] = [
  ...everyService(),
  // Hangar's own services beyond NATS and the collector.
  {
    from: "postgres-manager",
    to: "postgres",
    ports: [PORTS.postgres],
    setting: "HANGAR_DATABASE_URL",
    why: "the Postgres clusters' read model",
  },
  {
    from: "postgres-manager",
    to: "machines",
    ports: [PORTS.postgresMemberAgent],
    setting: "HANGAR_POSTGRES_MANAGER_AGENT_PORT",
    why: "the member agents' control API on the cluster's machines (checks, failover, backups)",
  },
  {
    from: "postgres-manager",
    to: "nodes",
    ports: [PORTS.postgresMemberAgent],
    setting: "HANGAR_POSTGRES_MANAGER_AGENT_PORT",
    why: "the member agents, reached at their host's address",
  },
  {
    from: "gateway",
    to: "nodes",
    setting: "HANGAR_HOST_AGENT_TUNNEL_PORT",
    why: "`hangar ssh console` through the host agents' tunnel listener, and port tunnels to machines",
  },
  { from: "gateway", to: "machines", why: "`hangar proxy`: port tunnels to a machine's own address" },
  {
    from: "gateway",
    to: "internet",
    setting: "HANGAR_REGISTRY_UPSTREAMS",
    why: "images pulled from upstream registries through Hangar's registry",
  },
  {
    from: "builder",
    to: "internet",
    setting: "HANGAR_REGISTRY_UPSTREAMS",
    why: "FROM images of upstream registries, and RUN steps' network (HANGAR_BUILDER_NETWORK=default)",
  },
  {
    from: "host-agent",
    to: "internet",
    setting: "HANGAR_REGISTRY_UPSTREAMS",
    why: "images pulled from upstream registries (in the node's network: no policy applies)",
  },
  {
    from: "webhooks",
    to: "internet",
    why: "deliveries to the webhooks' URLs (private addresses refused, HANGAR_WEBHOOKS_ALLOW_PRIVATE_TARGETS)",
  },
  {
    from: "proxy",
    to: "nodes",
    why: "requests to machines at their host's address (HANGAR_HOST_AGENT_ADDRESS), any service port",
  },
  { from: "proxy", to: "machines", why: "requests to machines at their own addresses" },
  {
    from: "proxy",
    to: "internet",
    why: "edge apps' fetches of URLs on the internet (private addresses and the host's own refused: docs/edge.md)",
  },
  // The edge.
  { from: "clients", to: "gateway", ports: [PORTS.gatewayApi], why: "the Machines API (LoadBalancer)" },
  { from: "clients", to: "proxy", ports: [PORTS.proxyHttp], why: "apps' traffic (LoadBalancer)" },
  // Infrastructure.
  { from: "nats", to: "nats", ports: [PORTS.natsCluster], why: "cluster routes (JetStream R3)" },
  { from: "otel-collector", to: "tempo", ports: [PORTS.otlpGrpc], why: "traces" },
  {
    from: "prometheus",
    to: "otel-collector",
    ports: [PORTS.collectorMetrics],
    why: "scrapes the services' metrics the collector exposes",
  },
  { from: "prometheus", to: "tempo", ports: [PORTS.tempo], why: "scrapes Tempo (prometheus.io/scrape)" },
  { from: "prometheus", to: "nodes", ports: [...PORTS.apiServer], why: "pod discovery at the API server" },
  { from: "grafana", to: "prometheus", ports: [PORTS.prometheus], why: "data source" },
  { from: "grafana", to: "tempo", ports: [PORTS.tempo], why: "data source" },
  // Name resolution for every pod of the namespace (the host agent uses the node's, ClusterFirstWithHostNet).
  ...[...HANGAR_SERVICES.filter((s) => !HOST_NETWORK.includes(s)), ...INFRA].map(
    (from): Connection => ({ from, to: "kube-dns", ports: [PORTS.dns], why: "DNS" }),
  ),
];
