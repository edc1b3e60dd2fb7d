import {
  type Instruction as AstInstruction,
  type Copy,
  DockerfileParser,
  type Flag,
  type From,
  type JSONInstruction,
  type PropertyInstruction,
} from "dockerfile-ast";
import { DockerfileError, UnsupportedInstructionError } from "./errors.js";

/** A NAME=value pair of ENV, LABEL or ARG; `raw` is the value as written (quotes and variables kept). */
export interface RawPair {
  name: string;
  raw: string | undefined;
}

/** A command as written: exec form (a JSON array) or shell form (a string for /bin/sh -c). */
export type CommandForm = { form: "exec"; argv: string[] } | { form: "shell"; command: string };

interface Base {
  /** Line number in the Dockerfile, starting at 1. */
  line: number;
  /** The instruction as written, continuation lines joined. */
  text: string;
}

/**
 * A here-document of RUN or COPY (`<<EOF` ... `EOF`): its body with the trailing newline, tabs
 * already stripped for `<<-`. `expand` is false when the delimiter was quoted (`<<"EOF"`), which
 * turns variable expansion off, as in the shell.
 */
export interface Heredoc {
  name: string;
  content: string;
  expand: boolean;
}

/** The options of HEALTHCHECK as written (`--interval=30s` ...), before substitution. */
export interface HealthcheckFlags {
  interval?: string;
  timeout?: string;
  startPeriod?: string;
  startInterval?: string;
  retries?: string;
}

/** One instruction of a Dockerfile, structured but not yet substituted. */
export type Instruction = Base &
  (
    | { kind: "FROM"; image: string; stageName: string | undefined; platform: string | undefined }
    | { kind: "ARG"; args: RawPair[] }
    | { kind: "ENV"; pairs: RawPair[] }
    | { kind: "LABEL"; pairs: RawPair[] }
    | { kind: "WORKDIR"; raw: string }
    | { kind: "USER"; raw: string }
    | { kind: "STOPSIGNAL"; raw: string }
    | { kind: "MAINTAINER"; raw: string }
    | { kind: "EXPOSE"; raw: string[] }
    | { kind: "VOLUME"; raw: string[] }
    | { kind: "SHELL"; argv: string[] }
    | {
        kind: "HEALTHCHECK";
        check: { none: true } | ({ none: false; flags: HealthcheckFlags } & CommandForm);
      }
    | { kind: "ONBUILD"; trigger: string }
    | RunFields
    | ({ kind: "CMD" | "ENTRYPOINT" } & CommandForm)
    | CopyFields
  );

/** RUN: its command, the raw `--mount` specs (substituted later), `--network`, and its heredocs. */
export type RunFields = {
  kind: "RUN";
  mounts: string[];
  network: string | undefined;
  heredocs: Heredoc[];
} & CommandForm;

/** COPY and ADD: `raw` holds the sources and, last, the destination. */
export interface CopyFields {
  kind: "COPY" | "ADD";
  from: string | undefined;
  chown: string | undefined;
  /** `--chmod` as written (octal once substituted). */
  chmod: string | undefined;
  /** `--link`: layers here are always independent of what is under them, so it changes nothing. */
  link: boolean;
  /** ADD `--checksum=sha256:...` of a URL source. */
  checksum: string | undefined;
  /** Sources written `<<NAME` take their content from these here-documents. */
  heredocs: Heredoc[];
  raw: string[];
}

/** A COPY or ADD instruction. */
export type CopyInstruction = Base & CopyFields;

/** One FROM and the instructions after it. */
export interface ParsedStage {
  index: number;
  /** The `AS name`, lowercased as Docker compares it; undefined when unnamed. */
  name: string | undefined;
  from: Extract<Instruction, { kind: "FROM" }>;
  instructions: Instruction[];
}

/** A Dockerfile cut into its global ARGs (before the first FROM) and its stages. */
export interface ParsedDockerfile {
  globalArgs: RawPair[];
  stages: ParsedStage[];
  escape: string;
  /** What the build output should say about the Dockerfile (an ignored `# syntax=` line). */
  notes: string[];
}

/** Flags each instruction takes; any other is refused, naming these. */
const FLAGS: Record<string, string[]> = {
  FROM: ["platform"],
  RUN: ["mount", "network"],
  COPY: ["from", "chown", "chmod", "link"],
  ADD: ["chown", "chmod", "link", "checksum"],
  HEALTHCHECK: ["interval", "timeout", "start-period", "start-interval", "retries"],
};

/** Flags that may be given without a value (`--link`), and may appear more than once (`--mount`). */
const BOOLEAN_FLAGS = new Set(["link"]);
const REPEATABLE_FLAGS = new Set(["mount"]);

/** Instructions ONBUILD may not hold, as in Docker. */
const NOT_ONBUILD = new Set(["ONBUILD", "FROM", "MAINTAINER"]);

/** Parses a Dockerfile with dockerfile-ast into stages of structured instructions. */
export function parseDockerfile(content: string): ParsedDockerfile {
  const doc = DockerfileParser.parse(content);
  const escapeChar = doc.getEscapeCharacter();
  const notes: string[] = [];
  for (const d of doc.getDirectives()) {
    // BuildKit would fetch this frontend image; the builder implements the Dockerfile frontend itself.
    if (d.getName().toLowerCase() === "syntax") {
      notes.push(
        `# syntax=${d.getValue()} ignored: Hangar's builder implements the Dockerfile frontend itself`,
      );
    }
  }
  const globalArgs: RawPair[] = [];
  const stages: ParsedStage[] = [];
  for (const ast of doc.getInstructions()) {
    const ins = toInstruction(ast, escapeChar);
    if (ins.kind === "FROM") {
      stages.push({ index: stages.length, name: ins.stageName, from: ins, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage) {
      stage.instructions.push(ins);
    } else if (ins.kind === "ARG") {
      globalArgs.push(...ins.args);
    } else {
      throw new DockerfileError(`${ins.kind} before the first FROM: only ARG may come before FROM`, {
        line: ins.line,
        instruction: ins.text,
      });
    }
  }
  if (stages.length === 0) throw new DockerfileError("the Dockerfile has no FROM instruction");
  const names = new Set<string>();
  for (const s of stages) {
    if (!s.name) continue;
    if (names.has(s.name)) {
      throw new DockerfileError(`stage name ${s.name} is used twice`, {
        line: s.from.line,
        instruction: s.from.text,
      });
    }
    names.add(s.name);
  }
  return { globalArgs, stages, escape: escapeChar, notes };
}

/**
 * Parses one instruction written on its own, as an ONBUILD trigger is (its line is the ONBUILD's):
 * the trigger is parsed when the ONBUILD is, so a bad one fails the image that declares it.
 */
export function parseTrigger(trigger: string, line: number, escapeChar = "\\"): Instruction {
  const prefix = escapeChar === "\\" ? "" : `# escape=${escapeChar}\n`;
  const [ast, ...more] = DockerfileParser.parse(prefix + trigger).getInstructions();
  if (!ast || more.length > 0) {
    throw new DockerfileError(`line ${line}: ONBUILD needs exactly one instruction`, {
      line,
      instruction: trigger,
    });
  }
  const keyword = ast.getKeyword();
  if (NOT_ONBUILD.has(keyword)) {
    throw new DockerfileError(`line ${line}: ${keyword} is not allowed as an ONBUILD trigger`, {
      line,
      instruction: `ONBUILD ${trigger}`,
    });
  }
  return { ...toInstruction(ast, escapeChar), line };
}

function toInstruction(ast: AstInstruction, escapeChar: string): Instruction {
  const keyword = ast.getKeyword();
  const line = ast.getRange().start.line + 1;
  const flags = "getFlags" in ast ? (ast as JSONInstruction).getFlags() : [];
  const content = ast.getArgumentsContent() ?? "";
  const text = [keyword, ...flags.map((f) => f.toString()), content].filter((s) => s !== "").join(" ");
  const at = { line, instruction: text };
  const args = ast.getArguments().map((a) => a.getValue());
  const needArgs = (min: number, what: string) => {
    if (args.length < min) throw new DockerfileError(`line ${line}: ${keyword} needs ${what}`, at);
  };
  const allowed = FLAGS[keyword] ?? [];
  const seen = new Set<string>();
  for (const f of flags) {
    const name = f.getName();
    if (!allowed.includes(name)) {
      throw new UnsupportedInstructionError(
        `line ${line}: ${keyword} --${name} is not supported by Hangar's builder` +
          (allowed.length > 0 ? ` (${keyword} takes ${allowed.map((a) => `--${a}`).join(", ")})` : ""),
        at,
      );
    }
    if (f.getValue() === null && !BOOLEAN_FLAGS.has(name))
      throw new DockerfileError(`line ${line}: --${name} needs a value`, at);
    if (seen.has(name) && !REPEATABLE_FLAGS.has(name))
      throw new DockerfileError(`line ${line}: --${name} is given twice`, at);
    seen.add(name);
  }
  const heredocs = "getHeredocs" in ast ? (ast as unknown as Copy).getHeredocs() : [];
  const base = { line, text };
  switch (keyword) {
    case "FROM": {
      const from = ast as From;
      needArgs(1, "an image (FROM <image> [AS <name>])");
      if (args.length !== 1 && (args.length !== 3 || args[1]?.toLowerCase() !== "as")) {
        throw new DockerfileError(`line ${line}: FROM takes <image> [AS <name>]`, at);
      }
      const stageName = from.getBuildStage()?.toLowerCase();
      if (stageName !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(stageName)) {
        throw new DockerfileError(`line ${line}: invalid stage name ${JSON.stringify(stageName)}`, at);
      }
      return {
        ...base,
        kind: "FROM",
        image: args[0] as string,
        stageName,
        platform: flagValue(flags, "platform"),
      };
    }
    case "ARG":
    case "ENV":
    case "LABEL": {
      const props = (ast as PropertyInstruction).getProperties();
      needArgs(1, keyword === "ARG" ? "a name (ARG <name>[=<default>])" : "<key>=<value>");
      const pairs = props.map((p) => ({ name: p.getName(), raw: p.getUnescapedValue() ?? undefined }));
      if (keyword !== "ARG") {
        for (const p of pairs) {
          if (p.raw === undefined)
            throw new DockerfileError(`line ${line}: ${keyword} ${p.name} has no value`, at);
        }
      }
      if (keyword === "ARG") return { ...base, kind: "ARG", args: pairs };
      return { ...base, kind: keyword as "ENV" | "LABEL", pairs };
    }
    case "WORKDIR":
    case "USER":
    case "STOPSIGNAL":
      needArgs(1, "a value");
      if (args.length > 1) throw new DockerfileError(`line ${line}: ${keyword} takes one value`, at);
      return { ...base, kind: keyword, raw: args[0] as string };
    case "MAINTAINER":
      // Deprecated but still accepted by Docker, which records it as the image's author.
      needArgs(1, "a name");
      return { ...base, kind: "MAINTAINER", raw: content.trim() };
    case "EXPOSE":
      needArgs(1, "a port (EXPOSE <port>[/<protocol>])");
      return { ...base, kind: "EXPOSE", raw: args };
    case "VOLUME": {
      needArgs(1, 'a path (VOLUME <path>... or VOLUME ["<path>", ...])');
      const form = commandForm(ast as JSONInstruction, content);
      return { ...base, kind: "VOLUME", raw: form.form === "exec" ? form.argv : args };
    }
    case "SHELL": {
      const form = commandForm(ast as JSONInstruction, content);
      if (form.form !== "exec" || form.argv.length === 0) {
        throw new DockerfileError(`line ${line}: SHELL takes a JSON array (SHELL ["/bin/bash", "-c"])`, at);
      }
      return { ...base, kind: "SHELL", argv: form.argv };
    }
    case "HEALTHCHECK": {
      needArgs(1, "NONE or CMD <command>");
      const what = (args[0] as string).toUpperCase();
      if (what === "NONE") {
        if (args.length > 1 || flags.length > 0)
          throw new DockerfileError(`line ${line}: HEALTHCHECK NONE takes no arguments or flags`, at);
        return { ...base, kind: "HEALTHCHECK", check: { none: true } };
      }
      if (what !== "CMD" || args.length < 2)
        throw new DockerfileError(`line ${line}: HEALTHCHECK takes NONE or CMD <command>`, at);
      const command = content.trim().slice(3).trim();
      // HEALTHCHECK is no JSON instruction to dockerfile-ast: its CMD is told apart by its text.
      const form = commandForm(undefined, command);
      const flagsOf: HealthcheckFlags = {};
      const names: Array<[string, keyof HealthcheckFlags]> = [
        ["interval", "interval"],
        ["timeout", "timeout"],
        ["start-period", "startPeriod"],
        ["start-interval", "startInterval"],
        ["retries", "retries"],
      ];
      for (const [flag, key] of names) {
        const v = flagValue(flags, flag);
        if (v !== undefined) flagsOf[key] = v;
      }
      return { ...base, kind: "HEALTHCHECK", check: { none: false, flags: flagsOf, ...form } };
    }
    case "ONBUILD": {
      needArgs(1, "an instruction (ONBUILD <INSTRUCTION> ...)");
      const trigger = content.trim();
      parseTrigger(trigger, line, escapeChar);
      return { ...base, kind: "ONBUILD", trigger };
    }
    case "RUN":
    case "CMD":
    case "ENTRYPOINT": {
      needArgs(1, "a command");
      if (keyword !== "RUN")
        return { ...base, kind: keyword, ...commandForm(ast as JSONInstruction, content) };
      const docs = heredocs.length > 0 ? readHeredocs(content, at) : undefined;
      return {
        ...base,
        kind: "RUN",
        mounts: flags.filter((f) => f.getName() === "mount").map((f) => f.getValue() ?? ""),
        network: flagValue(flags, "network"),
        heredocs: docs?.heredocs ?? [],
        ...(docs
          ? { form: "shell" as const, command: content }
          : commandForm(ast as JSONInstruction, content)),
      };
    }
    case "COPY":
    case "ADD": {
      let raw: string[];
      let docs: Heredoc[] = [];
      if (heredocs.length > 0) {
        const read = readHeredocs(content, at);
        docs = read.heredocs;
        raw = read.firstLine.trim().split(/\s+/);
      } else {
        const form = commandForm(ast as JSONInstruction, content);
        raw = form.form === "exec" ? form.argv : args;
      }
      if (raw.length < 2)
        throw new DockerfileError(`line ${line}: ${keyword} needs <source>... <destination>`, at);
      return {
        ...base,
        kind: keyword,
        from: flagValue(flags, "from"),
        chown: flagValue(flags, "chown"),
        chmod: flagValue(flags, "chmod"),
        link: flags.some((f) => f.getName() === "link" && f.getValue() !== "false"),
        checksum: flagValue(flags, "checksum"),
        heredocs: docs,
        raw,
      };
    }
    default:
      throw new DockerfileError(`line ${line}: unknown instruction ${keyword}`, at);
  }
}

const HEREDOC_MARK = /<<(-?)(["']?)([A-Za-z0-9_.-]+)\2/g;

/** The `<<NAME` a word opens, as BuildKit reads the words of a heredoc instruction's first line. */
export function heredocMark(word: string): { name: string; stripTabs: boolean; quoted: boolean } | undefined {
  const m = /^<<(-?)(["']?)([A-Za-z0-9_.-]+)\2$/.exec(word);
  return m ? { stripTabs: m[1] === "-", quoted: m[2] !== "", name: m[3] as string } : undefined;
}

/**
 * Splits a heredoc instruction's arguments into its first line and the bodies of the `<<NAME` it
 * opens, in order; each body ends at a line that is exactly NAME (after its tabs, for `<<-`).
 */
function readHeredocs(
  content: string,
  at: { line: number; instruction: string },
): { firstLine: string; heredocs: Heredoc[] } {
  const lines = content.split("\n");
  const firstLine = lines[0] ?? "";
  const heredocs: Heredoc[] = [];
  let i = 1;
  for (const m of firstLine.matchAll(HEREDOC_MARK)) {
    const stripTabs = m[1] === "-";
    const name = m[3] as string;
    const body: string[] = [];
    for (;;) {
      const l = lines[i++];
      if (l === undefined) {
        throw new DockerfileError(
          `line ${at.line}: the here-document <<${name} has no closing ${name} line`,
          at,
        );
      }
      const text = stripTabs ? l.replace(/^\t+/, "") : l;
      if (text === name) break;
      body.push(text);
    }
    heredocs.push({ name, content: body.map((b) => `${b}\n`).join(""), expand: m[2] === "" });
  }
  return { firstLine, heredocs };
}

function flagValue(flags: Flag[], name: string): string | undefined {
  return flags.find((f) => f.getName() === name)?.getValue() ?? undefined;
}

/**
 * Docker's rule: arguments that parse as a JSON array of strings are the exec form, anything else is
 * the shell form. The array is read from the instruction's argument text (dockerfile-ast locates it;
 * its own JSON strings drop spaces inside values, so JSON.parse reads them).
 */
function commandForm(ast: JSONInstruction | undefined, content: string): CommandForm {
  const bracketed = ast
    ? ast.getOpeningBracket() !== null && ast.getClosingBracket() !== null
    : content.trimStart().startsWith("[");
  if (bracketed) {
    try {
      const parsed: unknown = JSON.parse(content);
      if (Array.isArray(parsed) && parsed.every((s) => typeof s === "string")) {
        return { form: "exec", argv: parsed as string[] };
      }
    } catch {
      // Not JSON after all: Docker runs it as a shell command.
    }
  }
  return { form: "shell", command: content };
}
