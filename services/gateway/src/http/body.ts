import { validate } from "@hangar/config";
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError } from "./errors.js";

/**
 * Reads and validates the JSON body: malformed JSON or a body not matching `schema` is a 400
 * `invalid_argument` naming the fields. An empty body reads as `{}` when it is `optional`.
 */
export async function readBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  opts: { optional?: boolean } = {},
): Promise<z.output<S>> {
  const text = await c.req.text();
  let json: unknown = {};
  if (text.trim() !== "") {
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw ApiError.of("invalid_argument", `invalid JSON body: ${(err as Error).message}`);
    }
  } else if (!opts.optional) {
    throw ApiError.of("invalid_argument", "a JSON request body is required");
  }
  const result = validate(schema, json);
  if (!result.ok) throw ApiError.of("invalid_argument", result.message);
  return result.value;
}
