import { z } from "zod";

/** A TCP/UDP port number. */
export const PortSchema = z.number().int().min(1).max(65535);

/** A count or size that cannot be negative. */
export const CountSchema = z.number().int().min(0);

/** A whole number that fits Go's uint32 (fly-go's, such as http_options.idle_timeout). */
export const Uint32Schema = z.number().int().min(0).max(0xffff_ffff);

/** A list of strings, such as a command line. */
export const StringListSchema = z.array(z.string());

/** A string-to-string map, such as env or metadata. */
export const StringMapSchema = z.record(z.string(), z.string());
