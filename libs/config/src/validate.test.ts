import { describe, expect, it } from "vitest";
import { z } from "zod";
import { validate } from "./validate.js";

const schema = z.object({
  config: z.object({ guest: z.object({ cpus: z.number().int() }), kind: z.enum(["a", "b"]).optional() }),
  name: z.string().optional(),
});

describe("validate", () => {
  it("returns the parsed value", () => {
    expect(validate(schema, { config: { guest: { cpus: 2 } } })).toEqual({
      ok: true,
      value: { config: { guest: { cpus: 2 } } },
    });
  });

  it("names the field path and what was expected", () => {
    expect(validate(schema, { config: { guest: { cpus: "2" } } })).toEqual({
      ok: false,
      message: 'config.guest.cpus: expected number, received "2"',
    });
    expect(validate(schema, { config: { guest: { cpus: 1.5 } } })).toEqual({
      ok: false,
      message: "config.guest.cpus: expected integer, received 1.5",
    });
  });

  it("says when a field is missing, and lists enum options", () => {
    expect(validate(schema, { config: { kind: "c" } })).toEqual({
      ok: false,
      message: 'config.guest: required, expected object; config.kind: expected one of a, b, received "c"',
    });
  });

  it("describes a wrong root without a path", () => {
    expect(validate(schema, [])).toEqual({ ok: false, message: "expected object, received array" });
  });

  it("keeps long strings out of the message", () => {
    const secret = "x".repeat(40);
    const result = validate(schema, { config: { guest: { cpus: secret } } });
    expect(result).toEqual({ ok: false, message: "config.guest.cpus: expected number, received string" });
  });

  it("caps the number of reported issues", () => {
    const many = z.object(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, z.string()])));
    const result = validate(many, {});
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message.split("; ")).toHaveLength(6);
      expect(result.message).toMatch(/; and 3 more$/);
    }
  });
});
