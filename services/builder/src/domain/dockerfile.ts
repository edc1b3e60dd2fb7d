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

/** One instruction of a Dockerfile, structured but not yet substituted. */
export type Instruction = Base &
  (
    | { kind: "FROM"; image: string; stageName: string | undefined }
    | { kind: "ARG"; args: RawPair[] }
    | { kind: "ENV"; pairs: RawPair[] }
    | { kind: "LABEL"; pairs: RawPair[] }
    | { kind: "WORKDIR"; raw: string }
    | { kind: "USER"; raw: string }
    | { kind: "STOPSIGNAL"; raw: string }
    | { kind: "EXPOSE"; raw: string[] }
    | ({ kind: "RUN" | "CMD" | "ENTRYPOINT" } & CommandForm)
    | CopyFields
  );

/** COPY and ADD: `raw` holds the sources and, last, the destination. */
export interface CopyFields {
  kind: "COPY" | "ADD";
  from: string | undefined;
  chown: string | undefined;
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
}

const UNSUPPORTED: Record<string, string> = {
  HEALTHCHECK:
    "HEALTHCHECK is not supported by Hangar's builder: declare health checks in fly.toml ([[services.http_checks]] or [checks])",
  ONBUILD:
    "ONBUILD is not supported by Hangar's builder: write the instructions into the Dockerfile that needs them",
  SHELL:
    'SHELL is not supported by Hangar\'s builder: RUN uses /bin/sh -c; use the exec form (RUN ["bash", "-c", "..."]) for another shell',
  VOLUME: "VOLUME is not supported by Hangar's builder: declare volumes in fly.toml ([mounts])",
  MAINTAINER: 'MAINTAINER is deprecated and not supported: use LABEL maintainer="..."',
};

const FLAGS: Record<string, string[]> = { COPY: ["from", "chown"], ADD: ["chown"] };

/** Parses a Dockerfile with dockerfile-ast into stages of structured instructions. */
export function parseDockerfile(content: string): ParsedDockerfile {
  const doc = DockerfileParser.parse(content);
  const escapeChar = doc.getEscapeCharacter();
  const globalArgs: RawPair[] = [];
  const stages: ParsedStage[] = [];
  for (const ast of doc.getInstructions()) {
    const ins = toInstruction(ast);
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
  return { globalArgs, stages, escape: escapeChar };
}

function toInstruction(ast: AstInstruction): Instruction {
  const keyword = ast.getKeyword();
  const line = ast.getRange().start.line + 1;
  const flags = "getFlags" in ast ? (ast as JSONInstruction).getFlags() : [];
  const content = ast.getArgumentsContent() ?? "";
  const text = [keyword, ...flags.map((f) => f.toString()), content].filter((s) => s !== "").join(" ");
  const at = { line, instruction: text };
  const unsupported = UNSUPPORTED[keyword];
  if (unsupported) throw new UnsupportedInstructionError(`line ${line}: ${unsupported}`, at);
  const args = ast.getArguments().map((a) => a.getValue());
  const needArgs = (min: number, what: string) => {
    if (args.length < min) throw new DockerfileError(`line ${line}: ${keyword} needs ${what}`, at);
  };
  const allowFlags = (allowed: string[]) => {
    for (const f of flags) {
      if (!allowed.includes(f.getName())) {
        throw new UnsupportedInstructionError(
          `line ${line}: ${keyword} --${f.getName()} is not supported by Hangar's builder` +
            (allowed.length > 0 ? ` (${keyword} takes ${allowed.map((a) => `--${a}`).join(", ")})` : ""),
          at,
        );
      }
      if (f.getValue() === null)
        throw new DockerfileError(`line ${line}: --${f.getName()} needs a value`, at);
    }
  };
  const base = { line, text };
  switch (keyword) {
    case "FROM": {
      allowFlags([]);
      const from = ast as From;
      needArgs(1, "an image (FROM <image> [AS <name>])");
      if (args.length !== 1 && (args.length !== 3 || args[1]?.toLowerCase() !== "as")) {
        throw new DockerfileError(`line ${line}: FROM takes <image> [AS <name>]`, at);
      }
      const stageName = from.getBuildStage()?.toLowerCase();
      if (stageName !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(stageName)) {
        throw new DockerfileError(`line ${line}: invalid stage name ${JSON.stringify(stageName)}`, at);
      }
      return { ...base, kind: "FROM", image: args[0] as string, stageName };
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
    case "EXPOSE":
      needArgs(1, "a port (EXPOSE <port>[/<protocol>])");
      return { ...base, kind: "EXPOSE", raw: args };
    case "RUN":
    case "CMD":
    case "ENTRYPOINT": {
      allowFlags([]);
      const json = ast as JSONInstruction;
      if (keyword === "RUN" && (ast as unknown as Copy).getHeredocs().length > 0) {
        throw new UnsupportedInstructionError(
          `line ${line}: heredocs in RUN are not supported by Hangar's builder`,
          at,
        );
      }
      needArgs(1, "a command");
      return { ...base, kind: keyword, ...commandForm(json, content) };
    }
    case "COPY":
    case "ADD": {
      allowFlags(FLAGS[keyword] ?? []);
      const json = ast as JSONInstruction;
      const form = commandForm(json, content);
      const raw = form.form === "exec" ? form.argv : args;
      if (raw.length < 2)
        throw new DockerfileError(`line ${line}: ${keyword} needs <source>... <destination>`, at);
      if (keyword === "COPY" && (ast as Copy).getHeredocs().length > 0) {
        throw new UnsupportedInstructionError(
          `line ${line}: heredocs in COPY are not supported by Hangar's builder`,
          at,
        );
      }
      return {
        ...base,
        kind: keyword,
        from: flagValue(flags, "from"),
        chown: flagValue(flags, "chown"),
        raw,
      };
    }
    default:
      throw new DockerfileError(`line ${line}: unknown instruction ${keyword}`, at);
  }
}

function flagValue(flags: Flag[], name: string): string | undefined {
  return flags.find((f) => f.getName() === name)?.getValue() ?? undefined;
}

/**
 * Docker's rule: arguments that parse as a JSON array of strings are the exec form, anything else is
 * the shell form. The array is read from the instruction's argument text (dockerfile-ast locates it;
 * its own JSON strings drop spaces inside values, so JSON.parse reads them).
 */
function commandForm(ast: JSONInstruction, content: string): CommandForm {
  if (ast.getOpeningBracket() !== null && ast.getClosingBracket() !== null) {
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
