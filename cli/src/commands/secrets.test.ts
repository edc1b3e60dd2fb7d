import { describe, expect, it } from "vitest";
import { CliError } from "../cli-error.js";
import { parseAssignments, parseImport, secretsTable } from "./secrets.js";

describe("hangar secrets", () => {
  it("reads NAME=VALUE arguments, values keeping their '='", () => {
    expect(parseAssignments(["A=1", "URL=postgres://u:p@h/db?x=y", "EMPTY="])).toEqual({
      A: "1",
      URL: "postgres://u:p@h/db?x=y",
      EMPTY: "",
    });
    expect(() => parseAssignments(["NOVALUE"])).toThrow(CliError);
    expect(() => parseAssignments(["1A=x"])).toThrow(/environment variable name/);
    expect(() => parseAssignments(["A-B=x"])).toThrow(CliError);
  });

  it("imports dotenv text: comments, quotes, multi-line values", () => {
    const text = '# comment\nA=1\nexport B="two words"\nC="line1\nline2"\n\nD=\'x=y\'\n';
    expect(parseImport(text)).toEqual({ A: "1", B: "two words", C: "line1\nline2", D: "x=y" });
  });

  it("lists names, digests and status, never values", () => {
    const table = secretsTable(
      {
        version: 2,
        secrets: [
          {
            name: "A",
            digest: "abc",
            status: "deployed",
            created_at: "2026-01-01T00:00:00Z",
            updated_at: "2026-01-01T00:00:00Z",
          },
          {
            name: "B",
            digest: null,
            status: "unset_staged",
            created_at: "2026-01-01T00:00:00Z",
            updated_at: "2026-01-01T00:00:00Z",
          },
        ],
      },
      Date.parse("2026-01-01T00:01:00Z"),
    );
    expect(table).toMatch(/NAME\s+DIGEST\s+STATUS/);
    expect(table).toMatch(/A\s+abc\s+Deployed/);
    expect(table).toMatch(/B\s+-\s+Staged for removal/);
  });
});
