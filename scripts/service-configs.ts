// Every service's settings schema (services/<name>/src/config.ts), for the launchers that build
// their environments (platform.ts) and the docs table check. Scripts sit outside the workspace
// packages, so they import the schemas by path, as platform.ts starts each main.ts by path.
import { config as builder } from "../services/builder/src/config.js";
import { config as gateway } from "../services/gateway/src/config.js";
import { config as hostAgent } from "../services/host-agent/src/config.js";
import { config as monitor } from "../services/monitor/src/config.js";
import { config as placement } from "../services/placement/src/config.js";
import { config as postgresManager } from "../services/postgres-manager/src/config.js";
import { config as proxy } from "../services/proxy/src/config.js";
import { config as scheduler } from "../services/scheduler/src/config.js";
import { config as volume } from "../services/volume/src/config.js";
import { config as webhooks } from "../services/webhooks/src/config.js";

/** The settings of each service, in the order the platform starts them. */
export const SERVICE_CONFIGS = {
  placement,
  "host-agent": hostAgent,
  volume,
  "postgres-manager": postgresManager,
  webhooks,
  builder,
  gateway,
  proxy,
  scheduler,
  monitor,
};
