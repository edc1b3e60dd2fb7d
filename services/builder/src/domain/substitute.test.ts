// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are Dockerfile text, where ${VAR} is meant literally
import { describe, expect, it } from "vitest";
import { expandWord, SubstitutionError } from "./substitute.js";

const vars: Record<string, string> = { A: "1", EMPTY: "", NAME: "node" };
const lookup = (n: string) => vars[n];

describe("expandWord", () => {
  it("expands $VAR and ${VAR}, unset ones to nothing", () => {
    expect(expandWord("$A-${NAME}/$MISSING.x", lookup)).toBe("1-node/.x");
    expect(expandWord("$A$A", lookup)).toBe("11");
  });

  it("applies :- - :+ + defaults the way the shell does", () => {
    expect(expandWord("${MISSING:-d}", lookup)).toBe("d");
    expect(expandWord("${EMPTY:-d}", lookup)).toBe("d");
    expect(expandWord("${EMPTY-d}", lookup)).toBe("");
    expect(expandWord("${A:-d}", lookup)).toBe("1");
    expect(expandWord("${A:+alt}", lookup)).toBe("alt");
    expect(expandWord("${EMPTY:+alt}", lookup)).toBe("");
    expect(expandWord("${EMPTY+alt}", lookup)).toBe("alt");
    expect(expandWord("${MISSING:-$NAME}", lookup)).toBe("node");
  });

  it("keeps single quotes literal, expands in double quotes, and removes the quotes", () => {
    expect(expandWord("'$A'", lookup)).toBe("$A");
    expect(expandWord('"$A b"', lookup)).toBe("1 b");
    expect(expandWord('"a \\"q\\" \\$A \\n"', lookup)).toBe('a "q" $A \\n');
  });

  it("makes the escaped character literal", () => {
    expect(expandWord("\\$A", lookup)).toBe("$A");
    expect(expandWord("a\\ b", lookup)).toBe("a b");
    expect(expandWord("`$A", lookup, "`")).toBe("$A");
  });

  it("leaves a $ that starts no variable alone", () => {
    expect(expandWord("cost $5 $", lookup)).toBe("cost $5 $");
  });

  it("fails on ${VAR:?} when unset, and on forms it does not know", () => {
    expect(() => expandWord("${MISSING:?set MISSING}", lookup)).toThrow("MISSING: set MISSING");
    expect(expandWord("${A:?x}", lookup)).toBe("1");
    expect(() => expandWord("${A%%.*}", lookup)).toThrow(SubstitutionError);
    expect(() => expandWord("${A", lookup)).toThrow(/missing }/);
    expect(() => expandWord("'open", lookup)).toThrow(/unterminated/);
  });
});
