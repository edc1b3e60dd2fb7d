import { z } from "zod";

// App names, machine ids and regions end up in NATS subjects (`ev.machine.<app>.<id>`) and host names
// (`<app>.localhost`), so they are restricted to characters that are safe in both: no dots, no wildcards.

/** An app name: a DNS label of lowercase letters, digits and dashes, as Fly requires. */
export const AppNameSchema = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    "expected lowercase letters, digits and dashes (at most 63, not starting or ending with a dash)",
  );

/** A machine id: letters, digits, dashes and underscores, at most 64. */
export const MachineIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "expected letters, digits, dashes and underscores (at most 64)");

/** A region code such as "ams" or "local". */
export const RegionSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "expected lowercase letters, digits and dashes (at most 32)");
