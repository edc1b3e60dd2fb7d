// smol-toml returns plain values with no source positions, so error messages find their line here: one
// pass over the text notes where each table header, key and multi-line array element starts. It expects
// a document the parser has accepted and never throws on one it has not.

/** A path into a parsed TOML document: table keys and array indices. */
export type TomlPath = readonly (string | number)[];

const BARE_KEY = /[A-Za-z0-9_-]/;

type Frame = { kind: "["; index: number; expecting: boolean } | { kind: "{" };

/** Maps key paths of a TOML document to the 1-based line where they are defined. */
export class TomlLocator {
  private readonly lines = new Map<string, number>();
  private readonly arrayLengths = new Map<string, number>();
  private pos = 0;
  private line = 1;

  constructor(private readonly text: string) {
    this.scan();
  }

  /** The line of `path`, or of its longest prefix that has one; undefined when none does. */
  lineOf(path: TomlPath): number | undefined {
    for (let n = path.length; n > 0; n--) {
      const line = this.lines.get(keyOf(path.slice(0, n)));
      if (line !== undefined) return line;
    }
    return undefined;
  }

  private record(path: TomlPath, line = this.line): void {
    // The first definition wins: `[a.b]` after `[a]` must not move `a`.
    for (let n = 1; n <= path.length; n++) {
      const key = keyOf(path.slice(0, n));
      if (!this.lines.has(key)) this.lines.set(key, line);
    }
  }

  private scan(): void {
    let table: (string | number)[] = [];
    while (this.skipBlank()) {
      const c = this.text[this.pos];
      if (c === "[") {
        const arrayTable = this.text[this.pos + 1] === "[";
        this.pos += arrayTable ? 2 : 1;
        const keys = this.key();
        if (keys === undefined) {
          this.skipLine();
          continue;
        }
        table = arrayTable ? this.openArrayTable(keys) : this.resolve(keys);
        this.record(table);
        this.skipLine();
        continue;
      }
      const keys = this.key();
      if (keys === undefined || this.text[this.pos] !== "=") {
        this.skipLine();
        continue;
      }
      this.pos++;
      const path = [...table, ...keys];
      this.record(path);
      this.value(path);
    }
  }

  /** Resolves header keys to a path: a key naming an array of tables means its last element. */
  private resolve(keys: string[]): (string | number)[] {
    const path: (string | number)[] = [];
    for (const key of keys) {
      path.push(key);
      const length = this.arrayLengths.get(keyOf(path));
      if (length !== undefined) path.push(length - 1);
    }
    return path;
  }

  private openArrayTable(keys: string[]): (string | number)[] {
    const parent = this.resolve(keys.slice(0, -1));
    const array = [...parent, keys[keys.length - 1] as string];
    const index = this.arrayLengths.get(keyOf(array)) ?? 0;
    this.arrayLengths.set(keyOf(array), index + 1);
    return [...array, index];
  }

  /** Skips whitespace, newlines and comments; false at the end of the text. */
  private skipBlank(): boolean {
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) return false;
      if (c === "\n") this.line++;
      else if (c === "#") {
        this.skipComment();
        continue;
      } else if (c !== " " && c !== "\t" && c !== "\r") return true;
      this.pos++;
    }
  }

  private skipComment(): void {
    while (this.pos < this.text.length && this.text[this.pos] !== "\n") this.pos++;
  }

  /** Skips to the start of the next line. */
  private skipLine(): void {
    this.skipComment();
    if (this.pos < this.text.length) {
      this.pos++;
      this.line++;
    }
  }

  private skipSpaces(): void {
    while (this.text[this.pos] === " " || this.text[this.pos] === "\t") this.pos++;
  }

  /** Reads a dotted key (bare, "basic" or 'literal' parts) and the blanks after it. */
  private key(): string[] | undefined {
    const parts: string[] = [];
    for (;;) {
      this.skipSpaces();
      const c = this.text[this.pos];
      let part: string | undefined;
      if (c === '"' || c === "'") part = this.quotedKey(c);
      else {
        const start = this.pos;
        while (BARE_KEY.test(this.text[this.pos] ?? "")) this.pos++;
        part = this.pos > start ? this.text.slice(start, this.pos) : undefined;
      }
      if (part === undefined) return undefined;
      parts.push(part);
      this.skipSpaces();
      if (this.text[this.pos] !== ".") break;
      this.pos++;
    }
    // Header keys end with `]` or `]]`; skip them so the caller finds what follows.
    while (this.text[this.pos] === "]") this.pos++;
    this.skipSpaces();
    return parts;
  }

  private quotedKey(quote: string): string | undefined {
    let out = "";
    for (this.pos++; this.pos < this.text.length; this.pos++) {
      const c = this.text[this.pos] as string;
      if (c === quote) {
        this.pos++;
        return out;
      }
      if (c === "\n") return undefined;
      if (c === "\\" && quote === '"') {
        const escaped = this.text[++this.pos] ?? "";
        const unicode = escaped === "u" ? 4 : escaped === "U" ? 8 : 0;
        if (unicode > 0) {
          out += String.fromCodePoint(
            Number.parseInt(this.text.slice(this.pos + 1, this.pos + 1 + unicode), 16),
          );
          this.pos += unicode;
        } else {
          out += ESCAPES[escaped] ?? escaped;
        }
      } else out += c;
    }
    return undefined;
  }

  /** Skips a value, which may span lines; notes where each element of a multi-line array starts. */
  private value(path: TomlPath): void {
    const stack: Frame[] = [];
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) return;
      if (c === "\n") {
        if (stack.length === 0) return;
        this.line++;
        this.pos++;
        continue;
      }
      if (c === "#") {
        this.skipComment();
        continue;
      }
      if (c === " " || c === "\t" || c === "\r") {
        this.pos++;
        continue;
      }
      const top = stack[stack.length - 1];
      if (top?.kind === "[" && top.expecting && c !== "]") {
        top.expecting = false;
        const indices = elementIndices(stack);
        if (indices) this.record([...path, ...indices]);
      }
      if (c === '"' || c === "'") {
        this.string(c);
        continue;
      }
      if (c === "[") stack.push({ kind: "[", index: 0, expecting: true });
      else if (c === "{") stack.push({ kind: "{" });
      else if (c === "]" || c === "}") stack.pop();
      else if (c === "," && top?.kind === "[") {
        top.index++;
        top.expecting = true;
      }
      this.pos++;
    }
  }

  /** Skips a string, single- or multi-line, counting the lines it spans. */
  private string(quote: string): void {
    const multi = this.text.startsWith(quote.repeat(3), this.pos);
    const end = multi ? quote.repeat(3) : quote;
    this.pos += end.length;
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (c === "\\" && quote === '"') {
        if (this.text[this.pos + 1] === "\n") this.line++;
        this.pos += 2;
        continue;
      }
      if (c === "\n") {
        if (!multi) return;
        this.line++;
      }
      if (this.text.startsWith(end, this.pos)) {
        this.pos += end.length;
        // A multi-line string may end with up to two more quotes that belong to its content.
        while (multi && this.text[this.pos] === quote) this.pos++;
        return;
      }
      this.pos++;
    }
  }
}

const ESCAPES: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\" };

/** The element indices of nested arrays, or undefined inside an inline table (whose keys are not tracked). */
function elementIndices(stack: Frame[]): number[] | undefined {
  const indices: number[] = [];
  for (const frame of stack) {
    if (frame.kind === "{") return undefined;
    indices.push(frame.index);
  }
  return indices;
}

function keyOf(path: TomlPath): string {
  return JSON.stringify(path);
}
