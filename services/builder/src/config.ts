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
});
