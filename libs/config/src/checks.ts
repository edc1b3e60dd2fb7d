import { z } from "zod";
import { DurationSchema } from "./duration.js";
import { PortSchema, StringListSchema } from "./primitives.js";

/** A header an HTTP check sends (Fly's api.MachineHTTPHeader). */
export const CheckHeaderSchema = z.looseObject({
  name: z.string(),
  values: StringListSchema.nullish(),
});

/** A health check, top-level (named) or of a service (Fly's api.MachineCheck). */
export const MachineCheckSchema = z.looseObject({
  type: z.enum(["http", "tcp"]).nullish(),
  port: PortSchema.nullish(),
  interval: DurationSchema.nullish(),
  timeout: DurationSchema.nullish(),
  grace_period: DurationSchema.nullish(),
  method: z.string().nullish(),
  path: z.string().nullish(),
  protocol: z.enum(["http", "https"]).nullish(),
  tls_server_name: z.string().nullish(),
  tls_skip_verify: z.boolean().nullish(),
  headers: z.array(CheckHeaderSchema).nullish(),
  kind: z.enum(["informational", "readiness"]).nullish(),
});

export type MachineCheck = z.output<typeof MachineCheckSchema>;
