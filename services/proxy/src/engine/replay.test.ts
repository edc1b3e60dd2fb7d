import { describe, expect, it } from "vitest";
import { findReplay, parseReplay, ReplayHeaderError, replaySource } from "./replay.js";

describe("parseReplay", () => {
  it("reads Fly's fields", () => {
    expect(parseReplay("app=other")).toEqual({ app: "other", elsewhere: false });
    expect(parseReplay("region=sjc")).toEqual({ regions: ["sjc"], elsewhere: false });
    expect(parseReplay("instance=00bb33ff")).toEqual({ instance: "00bb33ff", elsewhere: false });
    expect(parseReplay("prefer_instance=00bb33ff")).toEqual({ preferInstance: "00bb33ff", elsewhere: false });
    expect(parseReplay("elsewhere=true")).toEqual({ elsewhere: true });
    expect(parseReplay("state=abc")).toEqual({ state: "abc", elsewhere: false });
  });

  it("combines fields split by semicolons, with spaces and a trailing semicolon", () => {
    expect(parseReplay(" region=sjc ; app=app-in-same-org;state=x=1;elsewhere=TRUE; ")).toEqual({
      regions: ["sjc"],
      app: "app-in-same-org",
      state: "x=1",
      elsewhere: true,
    });
  });

  it("takes a quoted list of regions in order of preference, any included", () => {
    expect(parseReplay('region="iad, ORD,any";app=x')).toEqual({
      regions: ["iad", "ord", "any"],
      app: "x",
      elsewhere: false,
    });
  });

  it("keeps semicolons and escaped quotes inside a quoted value", () => {
    expect(parseReplay('state="a;b \\"c\\"";app=x').state).toBe('a;b "c"');
  });

  it("ignores fields it does not implement", () => {
    expect(parseReplay("app=x;timeout=10s;fallback=force_self")).toEqual({ app: "x", elsewhere: false });
  });

  it.each([
    ["", /names no target/],
    ["timeout=2s", /names no target/],
    ["app", /not field=value/],
    ["app=x;region", /not field=value/],
    ["app=", /app is empty/],
    ["instance=", /instance is empty/],
    ['region=","', /region is empty/],
    ['state="open', /no closing quote/],
    ['state="a"b;app=x', /text after the quoted state/],
    ["elsewhere=yes", /elsewhere is yes/],
    ["app=a;app=b", /app is given twice/],
  ])("refuses %j", (value, message) => {
    expect(() => parseReplay(value)).toThrow(ReplayHeaderError);
    expect(() => parseReplay(value)).toThrow(message);
  });
});

describe("replaySource", () => {
  it("names the machine, its region, the time in microseconds and the state", () => {
    expect(replaySource("m1", "ams", "s", 1_700_000_000_123.4)).toBe(
      "instance=m1;region=ams;t=1700000000123400;state=s",
    );
    expect(replaySource("m1", undefined, undefined, 1)).toBe("instance=m1;t=1000");
  });
});

describe("findReplay", () => {
  it("finds the header in any case, the first one when repeated", () => {
    expect(findReplay(["Content-Type", "text/plain", "Fly-Replay", "app=a", "fly-replay", "app=b"])).toBe(
      "app=a",
    );
    expect(findReplay(["content-type", "text/plain", "fly-replay-x", "app=a", "x-fly-repl", "a"])).toBe(
      undefined,
    );
  });
});
