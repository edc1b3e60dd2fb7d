import { z } from "zod";
import { DurationSchema } from "./duration.js";
import { MachineConfigSchema } from "./machine-config.js";
import { AppNameSchema, RegionSchema } from "./names.js";
import { CountSchema } from "./primitives.js";
import { SignalSchema, StopSignalSchema } from "./signals.js";

// Request bodies of the Machines API. Unknown fields are dropped here (only a machine config keeps them).

/** Body of `POST /v1/apps`; org_slug defaults to "personal" as in Fly. */
export const CreateAppRequestSchema = z.object({
  app_name: AppNameSchema,
  org_slug: z
    .string()
    .min(1)
    .nullish()
    .transform((slug) => slug ?? "personal"),
  network: z.string().nullish(),
  app_role_id: z.string().nullish(),
});

/** Body of `POST /v1/apps/{app}/machines`. */
export const CreateMachineRequestSchema = z.object({
  name: z.string().min(1).max(63).nullish(),
  region: RegionSchema.nullish(),
  config: MachineConfigSchema,
  skip_launch: z.boolean().nullish(),
  skip_service_registration: z.boolean().nullish(),
  /** Seconds; when set, the machine is created leased and its view carries the lease nonce. */
  lease_ttl: CountSchema.nullish(),
  lsvd: z.boolean().nullish(),
});

/** Body of `POST /v1/apps/{app}/machines/{id}`: the whole new config, as Fly replaces it. */
export const UpdateMachineRequestSchema = CreateMachineRequestSchema.extend({
  /** The instance id the client last saw; a mismatch fails the update. */
  current_version: z.string().nullish(),
});

/** Body of `POST .../stop`, all optional; timeout is a Go duration or a number of seconds. */
export const StopRequestSchema = z.object({
  signal: StopSignalSchema.nullish(),
  timeout: DurationSchema.nullish(),
});

/** Body of `POST .../signal`. */
export const SignalRequestSchema = z.object({
  signal: SignalSchema,
});

/** Body of `POST .../lease`; ttl in seconds. */
export const LeaseRequestSchema = z.object({
  ttl: z.number().int().min(1).nullish(),
  description: z.string().nullish(),
});

export type CreateAppRequest = z.output<typeof CreateAppRequestSchema>;
export type CreateMachineRequest = z.output<typeof CreateMachineRequestSchema>;
export type UpdateMachineRequest = z.output<typeof UpdateMachineRequestSchema>;
export type StopRequest = z.output<typeof StopRequestSchema>;
export type SignalRequest = z.output<typeof SignalRequestSchema>;
export type LeaseRequest = z.output<typeof LeaseRequestSchema>;
