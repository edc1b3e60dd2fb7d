export { findBinary } from "./binaries.js";
export { testDatabase } from "./database.js";
export {
  CommandFailedError,
  MissingBinaryError,
  MissingSystemUserError,
  ServerStartError,
  TimeoutError,
} from "./errors.js";
export { copyHostExecutables } from "./host-executables.js";
export type { TestPlatformImage } from "./image-layout.js";
export { writeTestImageLayout } from "./image-layout.js";
export { sharedLayersDir } from "./layers-dir.js";
export type { NatsCluster, NatsClusterOptions } from "./nats-cluster.js";
export { startNatsCluster } from "./nats-cluster.js";
export type { NatsServer, NatsServerOptions } from "./nats-server.js";
export { startNatsServer } from "./nats-server.js";
export type { NetworkTopology, NetworkTopologyOptions, TopologyHost } from "./network-topology.js";
export { createNetworkTopology } from "./network-topology.js";
export type { PollOptions } from "./poll.js";
export { poll } from "./poll.js";
export { freePort } from "./ports.js";
export type { PostgresOptions, PostgresServer } from "./postgres.js";
export { startPostgres } from "./postgres.js";
export { signalProcessTree } from "./process-tree.js";
export type { PrometheusOptions, PrometheusServer, PromSeries, PromTarget } from "./prometheus.js";
export { prometheusConfig, startPrometheus } from "./prometheus.js";
export type { FaultyRegistryProxy, RegistryAuthMode, TestRegistry, TestRegistryOptions } from "./registry.js";
export { startFaultyRegistryProxy, startTestRegistry } from "./registry.js";
export {
  HARDENED_PROBE,
  PODMAN_CAP_EFF,
  parseSandboxProbe,
  type SandboxProbe,
  sandboxProbe,
} from "./sandbox-probe.js";
export type {} from "./vitest-context.js";
