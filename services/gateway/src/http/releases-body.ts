import { durationToMs, ImageSchema } from "@hangar/config";
import { EDGE_BUNDLE_DIGEST, validMaxUnavailable } from "@hangar/domain";
import type { Context } from "hono";
import { z } from "zod";
import { readBody } from "./body.js";
import { ApiError } from "./errors.js";
import type { CreateReleaseInput, ReleaseOutcome } from "./releases-backend.js";

/** Fly's deployment strategies. */
export const RELEASE_STRATEGIES = ["immediate", "rolling", "bluegreen", "canary"] as const;

/**
 * Body of `POST /v1/apps/{app}/releases`: an image, or a build whose image it defaults to, or an edge
 * app's bundle (uploaded first to `POST .../edge/bundles`).
 */
export const CreateReleaseRequestSchema = z
  .object({
    image: ImageSchema.nullish(),
    build_id: z.string().min(1).nullish(),
    config: z.record(z.string(), z.unknown()).nullish(),
    strategy: z.enum(RELEASE_STRATEGIES).nullish(),
    description: z.string().max(1024).nullish(),
    // Hangar's: the platform's release orchestrator carries the release out (else its client does).
    deploy: z.boolean().nullish(),
    // As fly.toml's [deploy] max_unavailable: a count (2) or a fraction of each group (0.33).
    max_unavailable: z
      .union([z.number(), z.string()])
      .transform(String)
      .refine((v) => validMaxUnavailable(v), { error: "expected a count (2) or a fraction (0.33)" })
      .nullish(),
    // As flyctl's --wait-timeout: a duration ("5m", "90s") or seconds.
    wait_timeout: z
      .union([z.number().positive(), z.string().min(1)])
      .transform((v, ctx) => {
        try {
          const ms = typeof v === "number" ? v * 1000 : durationToMs(v);
          if (ms > 0) return ms;
        } catch {
          // Reported below.
        }
        ctx.addIssue({ code: "custom", message: "expected a duration such as 5m or 90s, or seconds" });
        return z.NEVER;
      })
      .nullish(),
    // Redeploys an earlier release: its image (or edge bundle) and config unless given.
    rollback_of: z.number().int().positive().nullish(),
    // Hangar's: an edge app's bundle (sha256:<hex>) instead of an image; its limits come from the config's [edge].
    edge_bundle: z.string().regex(EDGE_BUNDLE_DIGEST, "expected sha256:<64 hex digits>").nullish(),
    // Hangar's: a first deploy by `hangar launch`, as `fly launch`'s: [deploy] seed_command runs once,
    // after the release_command. The platform runs it, so only with deploy.
    seed: z.boolean().nullish(),
  })
  .refine((r) => r.image || r.build_id || r.rollback_of || r.edge_bundle, {
    error: "required unless build_id, edge_bundle or rollback_of is given",
    path: ["image"],
  })
  .refine((r) => !(r.edge_bundle && (r.image || r.build_id)), {
    error: "a release runs an image or an edge bundle, not both",
    path: ["edge_bundle"],
  })
  .refine((r) => !r.seed || r.deploy, {
    error: "the platform runs the seed_command: a seeded release needs deploy: true",
    path: ["seed"],
  });

/** Body of `PATCH /v1/apps/{app}/releases/{version}`: how the release ended. */
export const EndReleaseRequestSchema = z.discriminatedUnion("status", [
  z.object({ status: z.literal("succeeded"), machine_ids: z.array(z.string().min(1)) }),
  z.object({ status: z.literal("failed"), reason: z.string().min(1) }),
]);

/** The validated body of a release creation. */
export async function createReleaseInput(c: Context): Promise<CreateReleaseInput> {
  const body = await readBody(c, CreateReleaseRequestSchema);
  return {
    image: body.image ?? undefined,
    buildId: body.build_id ?? undefined,
    config: body.config ?? undefined,
    strategy: body.strategy ?? undefined,
    description: body.description ?? undefined,
    deploy: body.deploy ?? false,
    maxUnavailable: body.max_unavailable ?? undefined,
    waitTimeoutMs: body.wait_timeout ?? undefined,
    rollbackOf: body.rollback_of ?? undefined,
    edgeBundle: body.edge_bundle ?? undefined,
    seed: body.seed ?? false,
  };
}

/** The validated body of a release's end. */
export async function releaseOutcome(c: Context): Promise<ReleaseOutcome> {
  const body = await readBody(c, EndReleaseRequestSchema);
  return body.status === "succeeded"
    ? { status: "succeeded", machineIds: body.machine_ids }
    : { status: "failed", reason: body.reason };
}

/** The `version` path parameter: a release number from 1. */
export function versionParam(c: Context): number {
  const raw = c.req.param("version") ?? "";
  if (!/^[1-9]\d{0,8}$/.test(raw)) {
    throw ApiError.of(
      "not_found",
      `release ${JSON.stringify(raw)} not found: versions are whole numbers from 1`,
    );
  }
  return Number(raw);
}
