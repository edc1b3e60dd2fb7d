import {
  ExecFrameDecoder,
  ExecFrameKind,
  encodeExecEnd,
  encodeExecFrame,
  parseExecEnd,
} from "@hangar/config";
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { parseProxyPorts } from "./tunnel.js";

describe("parseProxyPorts", () => {
  it("reads <local>:<remote>, and <local> alone as the same remote port", () => {
    expect(parseProxyPorts("15432:5432")).toEqual({ local: 15432, remote: 5432 });
    expect(parseProxyPorts("5432")).toEqual({ local: 5432, remote: 5432 });
    expect(parseProxyPorts("0:8080")).toEqual({ local: 0, remote: 8080 });
  });

  it("refuses what is not two ports", () => {
    for (const spec of ["", "a:1", "1:", ":1", "70000:1", "1:70000", "1:0", "0", "1:2:3", "-1:2"])
      expect(() => parseProxyPorts(spec), spec).toThrow(InvalidArgumentError);
  });
});

describe("exec frames", () => {
  it("decode however the stream is cut", () => {
    const bytes = Buffer.concat([
      encodeExecFrame(ExecFrameKind.stdout, Buffer.from("héllo")),
      encodeExecFrame(ExecFrameKind.stderr, Buffer.from("oops")),
      encodeExecEnd({ exit_code: 3, exit_signal: 0 }),
    ]);
    const decoder = new ExecFrameDecoder();
    const frames = [...bytes].flatMap((b) => decoder.push(Buffer.from([b])));
    expect(frames.map((f) => f.kind)).toEqual([
      ExecFrameKind.stdout,
      ExecFrameKind.stderr,
      ExecFrameKind.end,
    ]);
    expect(frames[0]?.payload.toString()).toBe("héllo");
    expect(parseExecEnd(frames[2]?.payload ?? Buffer.alloc(0))).toEqual({ exit_code: 3, exit_signal: 0 });
    expect(decoder.partial).toBe(false);
  });

  it("refuse an unknown kind or an oversized frame", () => {
    expect(() => new ExecFrameDecoder().push(Buffer.from([9, 0, 0, 0, 0]))).toThrow(/unknown frame kind 9/);
    expect(() => new ExecFrameDecoder().push(Buffer.from([1, 0xff, 0, 0, 0]))).toThrow(/frame of/);
  });
});
