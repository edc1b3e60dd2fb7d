import { closeSync, openSync, statSync, writeSync } from "node:fs";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../../test/wait.js";
import { LineSplitter, LogTail } from "./log-tail.js";

describe("LineSplitter", () => {
  it("returns complete lines and keeps the rest for the next chunk", () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from("a\nb"))).toEqual(["a"]);
    expect(s.push(Buffer.from("c\r\nd\n\n"))).toEqual(["bc", "d", ""]);
    expect(s.flush()).toBeNull();
    expect(s.push(Buffer.from("tail"))).toEqual([]);
    expect(s.flush()).toBe("tail");
  });

  it("does not break a multi-byte character split across chunks", () => {
    const bytes = Buffer.from("héllo\n");
    const s = new LineSplitter();
    expect(s.push(bytes.subarray(0, 2))).toEqual([]);
    expect(s.push(bytes.subarray(2))).toEqual(["héllo"]);
  });

  it("cuts a line longer than 64 KiB into pieces", () => {
    const s = new LineSplitter();
    const lines = s.push(Buffer.from(`${"x".repeat(64 * 1024 + 10)}\n`));
    expect(lines.map((l) => l.length)).toEqual([64 * 1024, 10]);
    // The same, when the line comes in chunks without its end yet.
    const chunked = new LineSplitter();
    expect(chunked.push(Buffer.alloc(64 * 1024 + 10, 0x79)).map((l) => l.length)).toEqual([64 * 1024]);
    expect(chunked.push(Buffer.from("\n"))).toEqual(["y".repeat(10)]);
  });

  it("copies what it keeps: the caller may reuse its buffer", () => {
    const s = new LineSplitter();
    const buf = Buffer.from("abc");
    s.push(buf);
    buf.fill(0x7a);
    expect(s.push(Buffer.from("\n"))).toEqual(["abc"]);
  });
});

describe("LogTail", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-logtail-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("follows appends from an offset and drains the unterminated last line", async () => {
    const path = join(dir, "out.log");
    await writeFile(path, "old\n");
    const lines: string[] = [];
    const tail = await LogTail.open(path, 4, (line) => lines.push(line));
    try {
      await appendFile(path, "one\ntw");
      // No drain here: the file watcher alone must deliver it.
      await waitFor("the first line", () => (lines.length === 1 ? true : undefined));
      await appendFile(path, "o\nthree");
      await tail.drain();
      expect(lines).toEqual(["one", "two", "three"]);
    } finally {
      await tail.close();
    }
  });

  it("starts from the end when asked, skipping what is already there", async () => {
    const path = join(dir, "out.log");
    await writeFile(path, "before\n");
    const lines: string[] = [];
    const tail = await LogTail.open(path, "end", (line) => lines.push(line));
    try {
      await appendFile(path, "after\n");
      await tail.drain();
      expect(lines).toEqual(["after"]);
    } finally {
      await tail.close();
    }
  });

  it("empties a file read to its end past its bound; the writer goes on at the new end", async () => {
    const path = join(dir, "out.log");
    // The machine's side: an O_APPEND descriptor, as the driver gives the wrapper.
    const writer = openSync(path, "a");
    const lines: string[] = [];
    const tail = await LogTail.open(path, 0, (line) => lines.push(line), { truncateAboveBytes: 10 });
    try {
      writeSync(writer, "0123456789\npart");
      await waitFor("the long line", () => (lines.length === 1 ? true : undefined));
      await waitFor("the truncation", () => (statSync(path).size === 0 ? true : undefined));
      writeSync(writer, "ial\nnext\n");
      await tail.drain();
      expect(lines).toEqual(["0123456789", "partial", "next"]);
      expect(statSync(path).size).toBe("ial\nnext\n".length);
    } finally {
      closeSync(writer);
      await tail.close();
    }
  });
});
