import { z } from "zod";
import { MachineCheckSchema } from "./checks.js";
import { CountSchema, PortSchema, StringListSchema, Uint32Schema } from "./primitives.js";

/** A public port of a service and how the proxy handles it (Fly's api.MachinePort). */
export const MachinePortSchema = z.looseObject({
  port: PortSchema.nullish(),
  start_port: PortSchema.nullish(),
  end_port: PortSchema.nullish(),
  handlers: StringListSchema.nullish(),
  force_https: z.boolean().nullish(),
  tls_options: z
    .looseObject({
      alpn: StringListSchema.nullish(),
      versions: StringListSchema.nullish(),
      default_self_signed: z.boolean().nullish(),
    })
    .nullish(),
  http_options: z
    .looseObject({
      compress: z.boolean().nullish(),
      h2_backend: z.boolean().nullish(),
      /** Seconds a client connection may stay idle (fly-go's IdleTimeout, a uint32). */
      idle_timeout: Uint32Schema.nullish(),
      response: z.looseObject({ headers: z.record(z.string(), z.unknown()).nullish() }).nullish(),
    })
    .nullish(),
  proxy_proto_options: z.looseObject({ version: z.string().nullish() }).nullish(),
});

/** When the proxy considers a machine loaded (Fly's api.MachineServiceConcurrency). */
export const ConcurrencySchema = z.looseObject({
  type: z.enum(["connections", "requests"]).nullish(),
  soft_limit: CountSchema.nullish(),
  hard_limit: CountSchema.nullish(),
});

/** A service the proxy routes to a machine (Fly's api.MachineService). */
export const MachineServiceSchema = z.looseObject({
  protocol: z.enum(["tcp", "udp"]).nullish(),
  internal_port: PortSchema.nullish(),
  ports: z.array(MachinePortSchema).nullish(),
  concurrency: ConcurrencySchema.nullish(),
  // Fly takes the old boolean form and the newer "off" | "stop" | "suspend".
  autostop: z.union([z.boolean(), z.enum(["off", "stop", "suspend"])]).nullish(),
  autostart: z.boolean().nullish(),
  min_machines_running: CountSchema.nullish(),
  /** Hangar's own: the most machines the autoscaler runs for this service. */
  max_machines_running: CountSchema.nullish(),
  checks: z.array(MachineCheckSchema).nullish(),
  force_instance_key: z.string().nullish(),
  force_instance_description: z.string().nullish(),
});

export type MachineService = z.output<typeof MachineServiceSchema>;
export type MachinePort = z.output<typeof MachinePortSchema>;
