import { z } from "zod";

/** A TCP/UDP port number. */
export const PortSchema = z.number().int().min(1).max(65535);

/** A count or size that cannot be negative. */
export const CountSchema = z.number().int().min(0);

/** A list of strings, such as a command line. */
export const StringListSchema = z.array(z.string());

/** A string-to-string map, such as env or metadata. */
export const StringMapSchema = z.record(z.string(), z.string());
