import { z } from "zod";
import { AppConfigSchema } from "./app-config.js";
import { guestPathProblem, isBase64 } from "./files.js";

/**
 * A release's config: an app config as fly.toml loads into, whose [[files]] may also carry
 * local_content, the bytes (base64) `hangar deploy` read from local_path (ReleasedAppFile). Not a
 * fly.toml key: parseAppConfig warns about one in a file and drops it.
 */
export const ReleaseConfigSchema = AppConfigSchema.extend({
  files: z
    .array(
      AppConfigSchema.shape.files
        .unwrap()
        .element.extend({
          local_content: z.string().refine(isBase64, "expected standard base64 with padding").optional(),
        })
        // What a machine's config.files takes (checked when it is deployed: flyctl loads any path).
        .superRefine((f, ctx) => {
          const problem = guestPathProblem(f.guest_path);
          if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["guest_path"], message: problem });
        }),
    )
    .optional(),
});
