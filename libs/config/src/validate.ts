import type { z } from "zod";

/** The outcome of `validate`: the parsed value, or one message naming every offending field. */
export type Validation<T> = { ok: true; value: T } | { ok: false; message: string };

// Reported issues are capped so a wildly wrong body still gives a short, readable message.
const MAX_ISSUES = 5;

function describe(input: unknown): string {
  if (input === null) return "null";
  if (Array.isArray(input)) return "array";
  if (typeof input === "number" || typeof input === "boolean") return String(input);
  // Short strings are quoted back to help spot the typo; long ones could be file contents or secrets.
  if (typeof input === "string" && input.length <= 32) return JSON.stringify(input);
  return typeof input;
}

function expectation(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === "invalid_type") return issue.expected === "int" ? "integer" : issue.expected;
  if (issue.code === "invalid_value") return `one of ${issue.values.map(String).join(", ")}`;
  return undefined;
}

const errorMap: z.core.$ZodErrorMap = (issue) => {
  const expected = expectation(issue);
  if (expected === undefined) return undefined;
  return issue.input === undefined
    ? `required, expected ${expected}`
    : `expected ${expected}, received ${describe(issue.input)}`;
};

/** Formats issues as "config.guest.cpus: expected number, received string; ...", each prefixed by its path. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const parts = issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = issue.path.map(String).join(".");
    return path === "" ? issue.message : `${path}: ${issue.message}`;
  });
  if (issues.length > MAX_ISSUES) parts.push(`and ${issues.length - MAX_ISSUES} more`);
  return parts.join("; ");
}

/** Parses `input` with `schema`; on failure returns one readable message naming the field paths. */
export function validate<S extends z.ZodType>(schema: S, input: unknown): Validation<z.output<S>> {
  const result = schema.safeParse(input, { error: errorMap });
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, message: describeIssues(result.error.issues) };
}
