import { describe, expect, it } from "vitest";
import { importSummary, sourceUrlProblem } from "./postgres-import.js";

describe("hangar postgres import", () => {
  it("takes postgres:// and postgresql:// URLs with a host, and refuses others before any call", () => {
    expect(sourceUrlProblem("postgres://u:p@db.example.com:5432/shop")).toBeUndefined();
    expect(sourceUrlProblem("postgresql://u@10.0.0.1/shop")).toBeUndefined();
    expect(sourceUrlProblem("db.example.com/shop")).toMatch(/not a URL/);
    expect(sourceUrlProblem("mysql://u:p@db/shop")).toMatch(/postgres:\/\//);
    expect(sourceUrlProblem("postgres:///shop")).toMatch(/no host/);
  });

  it("sums an import up: copied, or failed with the importer's exit code", () => {
    const result = {
      cluster: "db",
      database: "shop",
      machine_id: "m1",
      exit_code: 0,
      log_tail: [],
      duration_ms: 6400,
    };
    expect(importSummary(result)).toBe("Imported database shop into cluster db in 6.4s\n");
    expect(importSummary({ ...result, exit_code: 1 })).toMatch(/failed \(importer exit code 1\) after 6\.4s/);
    expect(importSummary({ ...result, exit_code: null })).toMatch(/exit code unknown/);
  });
});
