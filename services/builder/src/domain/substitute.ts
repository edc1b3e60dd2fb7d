/** Looks a variable up; undefined when it is not set. */
export type VariableLookup = (name: string) => string | undefined;

/** A `${...}` form the builder does not understand, or an unterminated one. */
export class SubstitutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SubstitutionError";
  }
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * Expands one word the way Docker's shell lexer does for the instructions it substitutes (ENV, ARG,
 * LABEL, WORKDIR, USER, EXPOSE, COPY, ADD, FROM): `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`; single quotes are literal,
 * double quotes expand, the escape character makes the next character literal; quotes are removed.
 * With `rawQuotes` (a heredoc's body) quotes are kept as written and only variables expand.
 */
export function expandWord(
  raw: string,
  lookup: VariableLookup,
  escapeChar = "\\",
  opts: { rawQuotes?: boolean } = {},
): string {
  let out = "";
  let i = 0;
  const n = raw.length;
  while (i < n) {
    const ch = raw[i] as string;
    if (opts.rawQuotes && ch !== "$") {
      // A heredoc's text: quotes are part of the file, and the escape only protects `$` and itself.
      const next = raw[i + 1];
      if (ch === escapeChar && (next === "$" || next === escapeChar)) {
        out += next;
        i += 2;
      } else {
        out += ch;
        i++;
      }
    } else if (ch === escapeChar) {
      if (i + 1 < n) out += raw[i + 1];
      i += 2;
    } else if (ch === "'") {
      const end = raw.indexOf("'", i + 1);
      if (end < 0) throw new SubstitutionError(`unterminated single quote in ${JSON.stringify(raw)}`);
      out += raw.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new SubstitutionError(`unterminated double quote in ${JSON.stringify(raw)}`);
        const c = raw[i] as string;
        if (c === '"') {
          i++;
          break;
        }
        if (c === escapeChar && i + 1 < n) {
          const next = raw[i + 1] as string;
          // Inside double quotes the escape only protects `"`, `$` and itself.
          out += next === '"' || next === "$" || next === escapeChar ? next : c + next;
          i += 2;
        } else if (c === "$") {
          const [value, after] = expandDollar(raw, i, lookup, escapeChar);
          out += value;
          i = after;
        } else {
          out += c;
          i++;
        }
      }
    } else if (ch === "$") {
      const [value, after] = expandDollar(raw, i, lookup, escapeChar);
      out += value;
      i = after;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

/** Expands the variable starting at raw[at] === "$"; returns its value and the index after it. */
function expandDollar(raw: string, at: number, lookup: VariableLookup, escapeChar: string): [string, number] {
  const next = raw[at + 1];
  if (next === undefined) return ["$", at + 1];
  if (next === "{") {
    const close = findClosingBrace(raw, at + 2);
    if (close < 0) throw new SubstitutionError(`missing } in ${JSON.stringify(raw)}`);
    return [expandBraced(raw.slice(at + 2, close), lookup, escapeChar), close + 1];
  }
  if (!NAME_START.test(next)) return ["$", at + 1];
  let end = at + 1;
  while (end < raw.length && NAME_CHAR.test(raw[end] as string)) end++;
  return [lookup(raw.slice(at + 1, end)) ?? "", end];
}

function findClosingBrace(raw: string, from: number): number {
  let depth = 0;
  for (let i = from; i < raw.length; i++) {
    const c = raw[i];
    if (c === "\\") i++;
    else if (c === "{") depth++;
    else if (c === "}") {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

function expandBraced(body: string, lookup: VariableLookup, escapeChar: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(body);
  if (!m) {
    throw new SubstitutionError(
      `unsupported substitution \${${body}}: use $VAR, \${VAR}, \${VAR:-default}, \${VAR:+alt} or \${VAR:?message}`,
    );
  }
  const name = m[1] as string;
  const op = m[2];
  const value = lookup(name);
  if (op === undefined) return value ?? "";
  const word = () => expandWord(m[3] ?? "", lookup, escapeChar);
  // With the colon an empty value counts as unset, as in the shell.
  const set = op.startsWith(":") ? value !== undefined && value !== "" : value !== undefined;
  switch (op.slice(-1)) {
    case "-":
      return set ? (value as string) : word();
    case "+":
      return set ? word() : "";
    default:
      if (!set) throw new SubstitutionError(`${name}: ${word() || "is not set"}`);
      return value as string;
  }
}
