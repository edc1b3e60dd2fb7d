import { describe, expect, it } from "vitest";
import { MountSpecError, parseRunMount } from "./run-mounts.js";

describe("parseRunMount", () => {
  it("reads cache mounts with BuildKit's defaults: id from the target, shared, 0755, root", () => {
    expect(parseRunMount("type=cache,target=.npm", "/app")).toEqual({
      type: "cache",
      id: "/app/.npm",
      target: "/app/.npm",
      readOnly: false,
      sharing: "shared",
      uid: 0,
      gid: 0,
      mode: 0o755,
    });
    expect(
      parseRunMount("type=cache,dst=/c,id=x,ro,sharing=private,uid=1000,gid=1000,mode=0700", "/"),
    ).toMatchObject({
      id: "x",
      target: "/c",
      readOnly: true,
      sharing: "private",
      uid: 1000,
      gid: 1000,
      mode: 0o700,
    });
  });

  it("reads secret mounts: /run/secrets/<id> unless only env= is asked, id from the target's name", () => {
    expect(parseRunMount("type=secret,id=npmrc", "/")).toMatchObject({
      id: "npmrc",
      target: "/run/secrets/npmrc",
      env: undefined,
      required: false,
      mode: 0o400,
    });
    expect(parseRunMount("type=secret,id=t,env=TOKEN", "/")).toMatchObject({
      target: undefined,
      env: "TOKEN",
    });
    expect(parseRunMount("type=secret,target=/root/.npmrc,required=true", "/")).toMatchObject({
      id: ".npmrc",
      target: "/root/.npmrc",
      required: true,
    });
  });

  it("reads bind mounts (the default type): context or from=, source kept inside its root", () => {
    expect(parseRunMount("target=/src", "/")).toEqual({
      type: "bind",
      target: "/src",
      source: "",
      from: { kind: "context" },
      readWrite: false,
    });
    expect(parseRunMount("type=bind,from=build,src=../../dist,target=d,rw", "/w")).toEqual({
      type: "bind",
      target: "/w/d",
      source: "dist",
      from: { kind: "named", name: "build" },
      readWrite: true,
    });
  });

  it("refuses what it cannot honour, saying what to write", () => {
    const bad: Array<[string, RegExp]> = [
      ["type=ssh", /type=ssh is not supported/],
      ["type=tmpfs,target=/t", /type=tmpfs is not supported/],
      ["type=cache", /needs target=<path>/],
      ["type=cache,target=/c,mode=999", /mode=999 is not an octal mode/],
      ["type=cache,target=/c,uid=x", /uid=x is not a number/],
      ["type=cache,target=/c,sharing=maybe", /sharing=maybe is not shared, private or locked/],
      ["type=secret", /needs id=<name>/],
      ["type=secret,id=a,from=x", /type=secret has no field from/],
      ["type=bind,target=/a,target=/b", /target is given twice/],
      ["type=bind,target=/a,ro=perhaps", /ro=perhaps is not true or false/],
      ["type=cache,target", /target needs a value/],
    ];
    for (const [spec, message] of bad) {
      expect(() => parseRunMount(spec, "/"), spec).toThrow(MountSpecError);
      expect(() => parseRunMount(spec, "/"), spec).toThrow(message);
    }
  });
});
