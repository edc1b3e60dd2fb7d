import { describe, expect, it } from "vitest";
import { formatLogLine, type LogLine, logSubject, parseLogLine } from "./logs.js";

const line: LogLine = {
  ts: "2025-01-31T12:00:00.123Z",
  machine_id: "3d8d",
  region: "local",
  stream: "stdout",
  line: "listening on :8080",
};

describe("logSubject", () => {
  it("uses wildcards for what is left out", () => {
    expect(logSubject("web")).toBe("logs.web.*.*");
    expect(logSubject("web", { machineId: "3d8d" })).toBe("logs.web.*.3d8d");
    expect(logSubject("web", { region: "local", machineId: "3d8d" })).toBe("logs.web.local.3d8d");
  });

  it("refuses tokens that would change the subject's meaning", () => {
    expect(() => logSubject("we.b")).toThrow(/app name/);
    expect(() => logSubject("web", { machineId: ">" })).toThrow(/machine id/);
    expect(() => logSubject("web", { region: "" })).toThrow(/region/);
  });
});

describe("parseLogLine / formatLogLine", () => {
  it("round-trips a LogLine and prints time, machine and line", () => {
    const parsed = parseLogLine(JSON.stringify(line));
    expect(parsed).toEqual(line);
    expect(formatLogLine(line)).toBe("2025-01-31T12:00:00.123Z 3d8d listening on :8080");
  });

  it("rejects payloads that are not LogLines", () => {
    expect(parseLogLine("plain text")).toBeUndefined();
    expect(parseLogLine("null")).toBeUndefined();
    expect(parseLogLine(JSON.stringify({ ...line, stream: "stdin" }))).toBeUndefined();
    expect(parseLogLine(JSON.stringify({ ...line, line: 3 }))).toBeUndefined();
  });
});
