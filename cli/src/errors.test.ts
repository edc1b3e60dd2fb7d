import { describe, expect, it } from "vitest";
import { ApiError, ConnectionError } from "./api.js";
import { CliError } from "./cli-error.js";
import { describeError, hintFor, withHint } from "./errors.js";

function apiError(status: number, message: string, path: string, code?: string): ApiError {
  return new ApiError(message, status, code, "GET", path);
}

describe("hintFor", () => {
  it("explains a refused token", () => {
    expect(hintFor(apiError(401, "unauthorized", "/apps"))).toMatch(
      /API token was refused.*HANGAR_API_TOKEN/,
    );
  });

  it("says no host has room on insufficient_capacity", () => {
    const err = new ApiError("no capacity", 412, "insufficient_capacity", "POST", "/apps/web/machines");
    expect(hintFor(err)).toMatch(/no host has room/);
  });

  it("tells a missing app from a missing machine", () => {
    expect(hintFor(apiError(404, "app not found", "/apps/web/machines"))).toBe(
      "app web not found: create it with `hangar apps create web`",
    );
    expect(hintFor(apiError(404, "app not found", "/apps/web/machines/3d8d/wait"))).toMatch(
      /^app web not found/,
    );
    expect(hintFor(apiError(404, "machine not found", "/apps/web/machines/3d8d"))).toMatch(
      /^machine 3d8d not found in app web/,
    );
  });

  it("does not blame the app for a missing build or release", () => {
    expect(hintFor(apiError(404, "build b1 not found", "/apps/web/builds/b1"))).toBeUndefined();
    expect(hintFor(apiError(404, "app web not found", "/apps/web/releases"))).toMatch(/^app web not found/);
  });

  it("has nothing to add to other errors", () => {
    expect(hintFor(apiError(400, "bad request", "/apps/web/machines"))).toBeUndefined();
  });
});

describe("describeError", () => {
  it("prints the message, then the hint", () => {
    expect(describeError(apiError(401, "unauthorized", "/apps"))).toEqual([
      "Error: unauthorized",
      expect.stringMatching(/token was refused/),
    ]);
    expect(describeError(new ConnectionError("http://127.0.0.1:1", "ECONNREFUSED"))).toEqual([
      "Error: cannot reach the Hangar API at http://127.0.0.1:1: is `npm start` running? (ECONNREFUSED)",
    ]);
    expect(describeError(new CliError("it broke", "try again"))).toEqual(["Error: it broke", "try again"]);
  });

  it("withHint keeps a hint the error already has", () => {
    const api = apiError(401, "unauthorized", "/apps");
    expect(withHint(api, "other")).toBe(api);
    expect(describeError(withHint(apiError(400, "boom", "/apps/x"), "look at logs"))).toEqual([
      "Error: boom",
      "look at logs",
    ]);
  });
});
