import { defineServiceConfig, partlySharedSettings, port, setting } from "@hangar/service";
import { z } from "zod";

const ms = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);

/** The postgres manager's settings (docs/configuration.md, docs/postgres.md). */
export const config = defineServiceConfig("postgres-manager", {
  HANGAR_POSTGRES_MANAGER_OPS_PORT: port(0, {
    description: "the postgres manager's /health and /metrics; 0 picks a free port",
  }),
  HANGAR_DATABASE_URL: partlySharedSettings.HANGAR_DATABASE_URL,
  // The manager seals the cluster app's credentials and opens the member agents' token.
  HANGAR_SECRETS_KEY: partlySharedSettings.HANGAR_SECRETS_KEY,
  HANGAR_SECRETS_KEY_FILE: partlySharedSettings.HANGAR_SECRETS_KEY_FILE,
  HANGAR_SECRETS_PREVIOUS_KEYS: partlySharedSettings.HANGAR_SECRETS_PREVIOUS_KEYS,
  HANGAR_POSTGRES_MANAGER_IMAGE: setting(z.string().min(1).default("hangar/postgres-member:15"), {
    description: "the image of a cluster's members (postgres 15, the member agent and its router)",
  }),
  HANGAR_POSTGRES_MANAGER_AGENT_PORT: port(5500, {
    description: "the member agents' control API port, reached at each member machine's host-local address",
  }),
  HANGAR_POSTGRES_MANAGER_CHECK_MS: setting(ms(500, 50), {
    description: "how often the failover actor asks every member of every ready cluster for its status",
  }),
  HANGAR_POSTGRES_MANAGER_PRIMARY_LOST_MS: setting(ms(2_000, 100), {
    description:
      "how long a primary must go unanswered (or answer not primary, or with postgres down) before a failover starts",
  }),
  HANGAR_POSTGRES_MANAGER_FENCE_WAIT_MS: setting(ms(4_000, 100), {
    description:
      "how long after the manager last saw the old primary answer unfenced a failover may promote: the members' HANGAR_PG_FENCE_AFTER_MS (3000) plus one fence check (500) plus a margin (500), so a partitioned old primary has fenced itself first",
  }),
  HANGAR_POSTGRES_MANAGER_CREATE_TIMEOUT_S: setting(ms(600), {
    description:
      "how long a cluster create may take (image pull, volumes, machines, bootstrap, base backups) before it is recorded failed",
  }),
});
