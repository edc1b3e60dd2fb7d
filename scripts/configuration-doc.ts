// docs/configuration.md, generated from the services' settings schemas: `pnpm docs:config` writes
// it, and tests/config/configuration-doc.test.ts fails when the file and the schemas differ.
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { settingsTable } from "@hangar/service";
import { formatMarkdown } from "./format-markdown.js";
import { SERVICE_CONFIGS } from "./service-configs.js";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Where the generated page lives. */
export const CONFIGURATION_DOC = join(root, "docs", "configuration.md");

/** The page: the naming rule, then one table of every setting of every service, formatted as biome does. */
export function configurationDoc(): string {
  return formatMarkdown(unformattedDoc(), CONFIGURATION_DOC);
}

function unformattedDoc(): string {
  return `# Configuration

<!-- Generated from services/*/src/config.ts by \`pnpm docs:config\`; a test fails when they differ. -->

Every service reads its settings from the environment through a zod schema in its
\`src/config.ts\`, checked at start: a bad value stops the service with a message naming the variable
and what it wants.

- **Naming rule.** \`HANGAR_<SERVICE>_...\` for a service's own settings (\`host-agent\` is
  \`HANGAR_HOST_AGENT_...\`), \`HANGAR_...\` for the settings every service shares. A service's ops
  server (\`/health\`, \`/metrics\`) listens on \`HANGAR_<SERVICE>_OPS_PORT\`; a public listener on
  \`HANGAR_<SERVICE>_PORT\` (the gateway's Machines API, the proxy).
- **Old names** (last column) are still read until the next release, with a warning in the log that
  names the new one. When both are set, the new one wins.
- **Bind address.** Ops servers and the gateway's API listen on \`HANGAR_BIND_HOST\`, loopback by
  default (as under \`npm start\`); a deployment that probes them from outside the pod sets it to
  \`0.0.0.0\`. The proxy is the edge and listens on all interfaces (\`HANGAR_PROXY_HOST\`).
- **Replicas.** \`HANGAR_STREAM_REPLICAS\` is the replica count of the event streams and of the
  image, registry, build cache and build context buckets, whichever service creates them
  (deploy/k8s sets 3, for its 3-node NATS). It applies when a stream or bucket is created; an
  existing one's replicas are changed with \`nats stream edit\`. The event store's snapshot
  buckets are still created with one replica.
- **dir: images.** \`HANGAR_DIR_IMAGE_ROOTS\` is shared by the gateway and the host agents, which
  both enforce it: unset, every \`dir:\` image is refused with a message saying how to enable it.
  \`npm start\` sets it to the repo's \`examples\` unless it is in its environment (empty: off);
  deploy/k8s leaves it unset. See docs/architecture.md, "dir: images".
- \`scripts/platform.ts\` (used by \`npm start\`, the end-to-end tests and the benchmarks) builds each
  service's environment from the same schemas.

${settingsTable(Object.values(SERVICE_CONFIGS))}
Outside the services: \`npm start\` reads \`HANGAR_HOME\`, \`HANGAR_NATS_PORT\`, \`HANGAR_PG_PORT\`,
\`HANGAR_PG_DATA\`, \`HANGAR_GATEWAY_PORT\`, \`HANGAR_PROXY_PORT\` and \`HANGAR_MONITOR_OPS_PORT\` (README);
the CLI reads \`HANGAR_HOME\`, \`HANGAR_API_URL\`, \`HANGAR_API_TOKEN\` and \`HANGAR_PROXY_URL\`; the image
library reads \`HANGAR_CACHE_DIR\` and \`HANGAR_REGISTRY_HOST\`; tracing reads the standard
\`OTEL_EXPORTER_OTLP_*\` variables.
`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  await writeFile(CONFIGURATION_DOC, configurationDoc());
  process.stdout.write(`wrote ${CONFIGURATION_DOC}\n`);
}
