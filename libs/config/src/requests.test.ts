import { describe, expect, it } from "vitest";
import {
  CreateAppRequestSchema,
  CreateMachineRequestSchema,
  LeaseRequestSchema,
  SignalRequestSchema,
  StopRequestSchema,
  UpdateMachineRequestSchema,
} from "./requests.js";
import { validate } from "./validate.js";

describe("CreateAppRequestSchema", () => {
  it("defaults the org to personal", () => {
    expect(CreateAppRequestSchema.parse({ app_name: "web" })).toEqual({
      app_name: "web",
      org_slug: "personal",
    });
  });

  it.each(["Web", "web.app", "web*", "-web", "web-", "a".repeat(64), ""])("rejects app name %j", (name) => {
    expect(validate(CreateAppRequestSchema, { app_name: name, org_slug: "personal" }).ok).toBe(false);
  });
});

describe("CreateMachineRequestSchema", () => {
  it("parses a create request, applying guest defaults and dropping unknown request fields", () => {
    const result = CreateMachineRequestSchema.parse({
      name: "web-1",
      region: "ams",
      config: { image: "nginx" },
      skip_launch: true,
      lease_ttl: 30,
      bogus: 1,
    });
    expect(result).toEqual({
      name: "web-1",
      region: "ams",
      config: { image: "nginx", guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 } },
      skip_launch: true,
      lease_ttl: 30,
    });
  });

  it("reports config errors under config.", () => {
    expect(validate(CreateMachineRequestSchema, { config: { image: "x", guest: { cpus: "2" } } })).toEqual({
      ok: false,
      message: 'config.guest.cpus: expected number, received "2"',
    });
    expect(validate(CreateMachineRequestSchema, {})).toEqual({
      ok: false,
      message: "config: required, expected object",
    });
  });

  it("keeps regions safe for NATS subjects", () => {
    expect(validate(CreateMachineRequestSchema, { region: "ams.1", config: { image: "x" } }).ok).toBe(false);
  });
});

it("UpdateMachineRequestSchema adds current_version", () => {
  expect(
    UpdateMachineRequestSchema.parse({ config: { image: "x" }, current_version: "v1" }).current_version,
  ).toBe("v1");
});

it("StopRequestSchema takes an empty body, a Go duration or seconds", () => {
  expect(StopRequestSchema.parse({})).toEqual({});
  expect(StopRequestSchema.parse({ signal: "SIGTERM", timeout: "10s" })).toEqual({
    signal: "SIGTERM",
    timeout: "10s",
  });
  expect(StopRequestSchema.parse({ timeout: 10 })).toEqual({ timeout: 10 });
  expect(validate(StopRequestSchema, { timeout: "ten" }).ok).toBe(false);
  expect(validate(StopRequestSchema, { signal: "SIGSTOP" }).ok).toBe(false);
});

it("SignalRequestSchema requires a valid signal", () => {
  expect(SignalRequestSchema.parse({ signal: "SIGHUP" })).toEqual({ signal: "SIGHUP" });
  expect(validate(SignalRequestSchema, {})).toEqual({
    ok: false,
    message: expect.stringMatching(/^signal: required, expected one of SIGABRT, /),
  });
});

it("LeaseRequestSchema takes a positive ttl in seconds", () => {
  expect(LeaseRequestSchema.parse({ ttl: 30, description: "deploy" })).toEqual({
    ttl: 30,
    description: "deploy",
  });
  expect(validate(LeaseRequestSchema, { ttl: 0 }).ok).toBe(false);
  expect(validate(LeaseRequestSchema, { ttl: "30" }).ok).toBe(false);
});
