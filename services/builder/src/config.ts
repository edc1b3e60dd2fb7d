import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineServiceConfig, port, setting } from "@hangar/service";
import { z } from "zod";

/** The builder's settings (docs/configuration.md). */
export const config = defineServiceConfig("builder", {
  HANGAR_BUILDER_OPS_PORT: port(4284, { description: "the builder's /health and /metrics" }),
  HANGAR_BUILDER_DIR: setting(z.string().default(join(tmpdir(), "hangar-builder")), {
    description: "where builds unpack contexts and assemble layers",
    shownDefault: "`$TMPDIR/hangar-builder`",
  }),
  HANGAR_BUILDER_MAX_CONTEXT_MB: setting(z.coerce.number().positive().default(2048), {
    description: "the most a build context may unpack to, in MiB (a larger one fails its build)",
  }),
});
