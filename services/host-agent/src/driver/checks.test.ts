import { describe, expect, it } from "vitest";
import { runChecks } from "./checks.js";
import { InvalidCheckError, InvalidDurationError } from "./errors.js";

const target = { ip: "127.0.0.1", port: 1 };
const ignore = () => {};

describe("runChecks: definitions", () => {
  it("rejects unknown types and protocols up front", () => {
    expect(() => runChecks({ c: { type: "grpc" } }, target, ignore)).toThrow(InvalidCheckError);
    expect(() => runChecks({ c: {} }, target, ignore)).toThrow(InvalidCheckError);
    expect(() => runChecks({ c: { type: "http", protocol: "ftp" } }, target, ignore)).toThrow(
      InvalidCheckError,
    );
  });

  it("rejects bad durations and non-positive intervals", () => {
    expect(() => runChecks({ c: { type: "tcp", interval: "soon" } }, target, ignore)).toThrow(
      InvalidDurationError,
    );
    expect(() => runChecks({ c: { type: "tcp", interval: "0s" } }, target, ignore)).toThrow(
      InvalidCheckError,
    );
    expect(() => runChecks({ c: { type: "tcp", timeout: "-1s" } }, target, ignore)).toThrow(
      InvalidCheckError,
    );
    expect(() => runChecks({ c: { type: "tcp", grace_period: "-1s" } }, target, ignore)).toThrow(
      InvalidCheckError,
    );
  });

  it("names the check in its error", () => {
    expect(() => runChecks({ web: { type: "udp" } }, target, ignore)).toThrow(/check web/);
  });
});
