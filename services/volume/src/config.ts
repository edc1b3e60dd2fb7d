import { defineServiceConfig, port, setting } from "@hangar/service";
import { z } from "zod";

const seconds = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/** The volume service's settings (docs/configuration.md). */
export const config = defineServiceConfig("volume", {
  HANGAR_VOLUME_OPS_PORT: port(0, {
    description: "the volume service's /health and /metrics; 0 picks a free port",
  }),
  HANGAR_VOLUME_SNAPSHOT_INTERVAL_S: setting(seconds(86_400), {
    description:
      "how often volumes with scheduled snapshots (auto_backup_enabled) are snapshotted; checked (and snapshots past their retention pruned) every 15 minutes, or this often when shorter",
  }),
  HANGAR_VOLUME_HOST_TIMEOUT_S: setting(seconds(300), {
    description: "how long a host agent may take to make, grow or delete a volume's disk",
  }),
  HANGAR_VOLUME_SNAPSHOT_TIMEOUT_S: setting(seconds(1_800), {
    description: "how long a host agent may take to snapshot a volume into the object store",
  }),
  HANGAR_VOLUME_RETRY_INTERVAL_S: setting(seconds(30), {
    description:
      "how often work left unfinished (a host that did not answer, a restart half-way) is taken up again",
  }),
});
