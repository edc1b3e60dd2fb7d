import { describe, expect, it } from "vitest";
import { splitShellWords } from "./shell-words.js";

describe("splitShellWords", () => {
  it("splits on whitespace and honours quotes and backslashes", () => {
    expect(splitShellWords("  node  server.js --port 8080 ")).toEqual([
      "node",
      "server.js",
      "--port",
      "8080",
    ]);
    expect(splitShellWords(`sh -c 'echo "$HOME" && ls'`)).toEqual(["sh", "-c", 'echo "$HOME" && ls']);
    expect(splitShellWords(`echo "a \\"b\\" \\n" c\\ d ''`)).toEqual(["echo", 'a "b" \\n', "c d", ""]);
  });

  it("rejects an unterminated quote", () => {
    expect(() => splitShellWords(`echo 'oops`)).toThrow(/unterminated ' quote/);
  });
});
