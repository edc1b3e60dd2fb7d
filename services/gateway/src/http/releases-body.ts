import { ImageSchema } from "@hangar/config";
import type { Context } from "hono";
import { z } from "zod";
import { readBody } from "./body.js";
import { ApiError } from "./errors.js";
import type { CreateReleaseInput, ReleaseOutcome } from "./releases-backend.js";

/** Fly's deployment strategies. */
export const RELEASE_STRATEGIES = ["immediate", "rolling", "bluegreen", "canary"] as const;

/** Body of `POST /v1/apps/{app}/releases`: an image, or a build whose image it defaults to. */
export const CreateReleaseRequestSchema = z
  .object({
    image: ImageSchema.nullish(),
    build_id: z.string().min(1).nullish(),
    config: z.record(z.string(), z.unknown()).nullish(),
    strategy: z.enum(RELEASE_STRATEGIES).nullish(),
    description: z.string().max(1024).nullish(),
  })
  .refine((r) => r.image || r.build_id, {
    error: "required unless build_id is given",
    path: ["image"],
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
