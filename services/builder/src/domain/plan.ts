import { posix } from "node:path";
import type { ImageRuntimeConfig } from "@hangar/oci";
import type { CommandForm, CopyInstruction, ParsedDockerfile, ParsedStage, RawPair } from "./dockerfile.js";
import { DockerfileError } from "./errors.js";
import { expandWord, SubstitutionError, type VariableLookup } from "./substitute.js";

/** Where a stage starts from. */
export type StageBase =
  | { kind: "scratch" }
  | { kind: "image"; ref: string }
  | { kind: "stage"; index: number };

/** Where COPY takes its files from. */
export type CopySource =
  | { kind: "context" }
  | { kind: "stage"; index: number }
  | { kind: "image"; ref: string };

/** A stage to build, its base resolved. */
export interface StageHead {
  index: number;
  name: string | undefined;
  base: StageBase;
  /** The step number of its FROM (steps count across the whole build, from 1). */
  firstStep: number;
  parsed: ParsedStage;
}

/** The stages a build needs, in the order to build them. */
export interface BuildOutline {
  stages: StageHead[];
  /** Index of the stage whose image is the result. */
  target: number;
  totalSteps: number;
}

/** What a step does, every variable already substituted. */
export type StepOp =
  | { kind: "from"; base: StageBase }
  /** Changes only the image config (ENV, ARG, LABEL, CMD, ENTRYPOINT, EXPOSE, USER, STOPSIGNAL). */
  | { kind: "config" }
  /** Sets the working directory and creates it when the image lacks it. */
  | { kind: "workdir"; path: string }
  | { kind: "run"; argv: string[]; env: string[]; cwd: string; user: string }
  | {
      kind: "copy";
      add: boolean;
      source: CopySource;
      /** Paths (or globs) in the source, as written after substitution. */
      sources: string[];
      /** Absolute destination. */
      dest: string;
      /** The destination names a directory (trailing slash, or "."). */
      destIsDir: boolean;
      chown: string | undefined;
    };

/** One instruction of the build, ready to run. */
export interface PlannedStep {
  step: number;
  stage: number;
  stageName: string;
  line: number;
  /** The instruction as written. */
  instruction: string;
  /** The instruction after substitution: what the cache key hashes. */
  resolved: string;
  op: StepOp;
}

/** A stage's steps and the config its image ends with. */
export interface StagePlan {
  steps: PlannedStep[];
  config: ImageRuntimeConfig;
}

/** The PATH a RUN gets when the image sets none, as in Docker. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface OutlineOptions {
  buildArgs?: Record<string, string>;
  /** The stage to build (its name); the last one when empty. */
  target?: string;
}

/**
 * Resolves each stage's FROM (with the global ARGs) and picks the stages the target needs, through
 * FROM and COPY --from, in Dockerfile order.
 */
export function outlineBuild(parsed: ParsedDockerfile, opts: OutlineOptions = {}): BuildOutline {
  const buildArgs = opts.buildArgs ?? {};
  const globals = globalArgValues(parsed, buildArgs);
  const lookup: VariableLookup = (name) => globals.get(name);
  const bases = parsed.stages.map((s) => resolveFrom(parsed, s, lookup));
  let target = parsed.stages.length - 1;
  if (opts.target) {
    const t = findStage(parsed, opts.target, parsed.stages.length);
    if (t === undefined) {
      const names = parsed.stages.map((s) => s.name).filter((n) => n !== undefined);
      throw new DockerfileError(
        `target stage ${JSON.stringify(opts.target)} is not in the Dockerfile` +
          (names.length > 0 ? ` (stages: ${names.join(", ")})` : " (it has no named stages)"),
      );
    }
    target = t;
  }
  const needed = new Set<number>();
  const visit = (i: number) => {
    if (needed.has(i)) return;
    needed.add(i);
    const base = bases[i];
    if (base?.kind === "stage") visit(base.index);
    const stage = parsed.stages[i] as ParsedStage;
    const vars = stageArgLookup(stage, buildArgs, globals);
    for (const ins of stage.instructions) {
      if (ins.kind !== "COPY" || ins.from === undefined) continue;
      const src = resolveCopyFrom(parsed, stage, ins, vars);
      if (src.kind === "stage") visit(src.index);
    }
  };
  visit(target);
  const stages: StageHead[] = [];
  let step = 1;
  for (const s of parsed.stages) {
    if (!needed.has(s.index)) continue;
    stages.push({
      index: s.index,
      name: s.name,
      base: bases[s.index] as StageBase,
      firstStep: step,
      parsed: s,
    });
    step += 1 + s.instructions.length;
  }
  return { stages, target, totalSteps: step - 1 };
}

export interface PlanStageOptions {
  buildArgs?: Record<string, string>;
  /** The config of the image or stage the stage starts from ({} for scratch). */
  baseConfig: ImageRuntimeConfig;
  /** The whole Dockerfile, for the stages FROM and COPY --from refer to. */
  parsed: ParsedDockerfile;
}

/** Plans one stage: substitutes every instruction Docker substitutes and computes the image config. */
export function planStage(head: StageHead, opts: PlanStageOptions): StagePlan {
  const { parsed } = opts;
  const buildArgs = opts.buildArgs ?? {};
  const globals = globalArgValues(parsed, buildArgs);
  const config = cloneConfig(opts.baseConfig);
  const env = new Map<string, string>((config.Env ?? []).map(splitEnv));
  const args = new Map<string, string | undefined>();
  const lookup: VariableLookup = (name) => env.get(name) ?? args.get(name);
  let cmdSet = false;
  const stageName = head.name ?? "";
  const steps: PlannedStep[] = [
    {
      step: head.firstStep,
      stage: head.index,
      stageName,
      line: head.parsed.from.line,
      instruction: head.parsed.from.text,
      resolved: `FROM ${JSON.stringify(head.base)}`,
      op: { kind: "from", base: head.base },
    },
  ];
  head.parsed.instructions.forEach((ins, i) => {
    const at = { line: ins.line, instruction: ins.text };
    const expand = (raw: string) => {
      try {
        return expandWord(raw, lookup, parsed.escape);
      } catch (err) {
        if (err instanceof SubstitutionError)
          throw new DockerfileError(`line ${ins.line}: ${err.message}`, at);
        throw err;
      }
    };
    const push = (resolved: string, op: StepOp) =>
      steps.push({
        step: head.firstStep + 1 + i,
        stage: head.index,
        stageName,
        line: ins.line,
        instruction: ins.text,
        resolved,
        op,
      });
    switch (ins.kind) {
      case "ARG": {
        const set: Array<[string, string | undefined]> = [];
        for (const a of ins.args) {
          const value = buildArgs[a.name] ?? (a.raw !== undefined ? expand(a.raw) : globals.get(a.name));
          args.set(a.name, value);
          set.push([a.name, value]);
        }
        push(`ARG ${JSON.stringify(set)}`, { kind: "config" });
        return;
      }
      case "ENV": {
        // Every pair sees the values from before the instruction, as in Docker.
        const values = ins.pairs.map((p) => [p.name, expand(p.raw ?? "")] as const);
        for (const [k, v] of values) env.set(k, v);
        config.Env = [...env].map(([k, v]) => `${k}=${v}`);
        push(`ENV ${JSON.stringify(values)}`, { kind: "config" });
        return;
      }
      case "LABEL": {
        const values = ins.pairs.map((p) => [expand(p.name), expand(p.raw ?? "")] as const);
        config.Labels = { ...config.Labels };
        for (const [k, v] of values) config.Labels[k] = v;
        push(`LABEL ${JSON.stringify(values)}`, { kind: "config" });
        return;
      }
      case "WORKDIR": {
        const path = posix.resolve(config.WorkingDir || "/", expand(ins.raw));
        config.WorkingDir = path;
        push(`WORKDIR ${path}`, { kind: "workdir", path });
        return;
      }
      case "USER": {
        config.User = expand(ins.raw);
        push(`USER ${config.User}`, { kind: "config" });
        return;
      }
      case "STOPSIGNAL": {
        config.StopSignal = expand(ins.raw);
        push(`STOPSIGNAL ${config.StopSignal}`, { kind: "config" });
        return;
      }
      case "EXPOSE": {
        const ports = ins.raw.flatMap((r) => exposedPorts(expand(r), ins.line, at));
        config.ExposedPorts = { ...config.ExposedPorts };
        for (const p of ports) config.ExposedPorts[p] = {};
        push(`EXPOSE ${ports.join(" ")}`, { kind: "config" });
        return;
      }
      case "CMD": {
        config.Cmd = argvOf(ins);
        cmdSet = true;
        push(`CMD ${JSON.stringify(config.Cmd)}`, { kind: "config" });
        return;
      }
      case "ENTRYPOINT": {
        config.Entrypoint = argvOf(ins);
        // Docker drops an inherited CMD when the stage sets an ENTRYPOINT without a CMD before it.
        if (!cmdSet) delete config.Cmd;
        push(`ENTRYPOINT ${JSON.stringify(config.Entrypoint)}`, { kind: "config" });
        return;
      }
      case "RUN": {
        const argv = argvOf(ins);
        const runEnv = new Map(env);
        if (!runEnv.has("PATH")) runEnv.set("PATH", DEFAULT_PATH);
        for (const [k, v] of args) if (v !== undefined && !env.has(k)) runEnv.set(k, v);
        const op: StepOp = {
          kind: "run",
          argv,
          env: [...runEnv].map(([k, v]) => `${k}=${v}`),
          cwd: config.WorkingDir || "/",
          user: config.User ?? "",
        };
        // Build args reach the command's environment, so they are part of what it ran.
        const argPairs = [...args].filter(([, v]) => v !== undefined);
        push(
          `RUN ${JSON.stringify(argv)}${argPairs.length > 0 ? ` ARGS ${JSON.stringify(argPairs)}` : ""}`,
          op,
        );
        return;
      }
      case "COPY":
      case "ADD": {
        const words = ins.raw.map(expand);
        const destRaw = words.pop() as string;
        const source =
          ins.kind === "COPY" && ins.from !== undefined
            ? resolveCopyFrom(parsed, head.parsed, ins, lookup)
            : ({ kind: "context" } as const);
        const chown = ins.chown !== undefined ? expand(ins.chown) : undefined;
        const destIsDir = destRaw.endsWith("/") || destRaw === "." || destRaw === "";
        const dest = posix.resolve(config.WorkingDir || "/", destRaw);
        if (words.length > 1 && !destIsDir) {
          throw new DockerfileError(
            `line ${ins.line}: when ${ins.kind} has more than one source, the destination must be a directory and end with a /`,
            at,
          );
        }
        const op: StepOp = {
          kind: "copy",
          add: ins.kind === "ADD",
          source,
          sources: words,
          dest,
          destIsDir,
          chown,
        };
        push(
          `${ins.kind} ${JSON.stringify({ source, sources: words, dest, destIsDir, chown: chown ?? null })}`,
          op,
        );
        return;
      }
      case "FROM":
        throw new Error("FROM inside a stage");
    }
  });
  return { steps, config };
}

function argvOf(ins: CommandForm): string[] {
  return ins.form === "exec" ? ins.argv : ["/bin/sh", "-c", ins.command];
}

function exposedPorts(spec: string, line: number, at: { line: number; instruction: string }): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  const first = Number(m?.[1]);
  const last = m?.[2] ? Number(m[2]) : first;
  if (!m || first < 1 || last > 65535 || last < first) {
    throw new DockerfileError(`line ${line}: EXPOSE ${spec} is not a port (EXPOSE <port>[/tcp|/udp])`, at);
  }
  const proto = (m[3] ?? "tcp").toLowerCase();
  const out: string[] = [];
  for (let p = first; p <= last; p++) out.push(`${p}/${proto}`);
  return out;
}

function splitEnv(entry: string): [string, string] {
  const i = entry.indexOf("=");
  return i < 0 ? [entry, ""] : [entry.slice(0, i), entry.slice(i + 1)];
}

function cloneConfig(c: ImageRuntimeConfig): ImageRuntimeConfig {
  return JSON.parse(JSON.stringify(c)) as ImageRuntimeConfig;
}

/** The values of the ARGs before the first FROM: build args override their defaults. */
function globalArgValues(parsed: ParsedDockerfile, buildArgs: Record<string, string>): Map<string, string> {
  const values = new Map<string, string>();
  for (const a of parsed.globalArgs) {
    const given = buildArgs[a.name];
    let value = given;
    if (value === undefined && a.raw !== undefined) {
      try {
        value = expandWord(a.raw, (n) => values.get(n), parsed.escape);
      } catch (err) {
        if (err instanceof SubstitutionError) throw new DockerfileError(`ARG ${a.name}: ${err.message}`);
        throw err;
      }
    }
    if (value !== undefined) values.set(a.name, value);
  }
  return values;
}

/** The ARG values of a stage as a lookup, for the substitutions made before its base is known. */
function stageArgLookup(
  stage: ParsedStage,
  buildArgs: Record<string, string>,
  globals: Map<string, string>,
): VariableLookup {
  const args = new Map<string, string>();
  for (const ins of stage.instructions) {
    if (ins.kind !== "ARG") continue;
    for (const a of ins.args as RawPair[]) {
      const value = buildArgs[a.name] ?? a.raw ?? globals.get(a.name);
      if (value !== undefined) args.set(a.name, value);
    }
  }
  return (name) => args.get(name);
}

function findStage(parsed: ParsedDockerfile, ref: string, before: number): number | undefined {
  const lower = ref.toLowerCase();
  const named = parsed.stages.find((s) => s.name === lower && s.index < before);
  if (named) return named.index;
  if (/^\d+$/.test(ref) && Number(ref) < before) return Number(ref);
  return undefined;
}

function resolveFrom(parsed: ParsedDockerfile, stage: ParsedStage, lookup: VariableLookup): StageBase {
  const at = { line: stage.from.line, instruction: stage.from.text };
  let image: string;
  try {
    image = expandWord(stage.from.image, lookup, parsed.escape);
  } catch (err) {
    if (err instanceof SubstitutionError) throw new DockerfileError(`line ${at.line}: ${err.message}`, at);
    throw err;
  }
  if (image === "") throw new DockerfileError(`line ${at.line}: FROM names no image after substitution`, at);
  if (image.toLowerCase() === "scratch") return { kind: "scratch" };
  const earlier = findStage(parsed, image, stage.index);
  if (earlier !== undefined) return { kind: "stage", index: earlier };
  return { kind: "image", ref: image };
}

function resolveCopyFrom(
  parsed: ParsedDockerfile,
  stage: ParsedStage,
  ins: CopyInstruction,
  lookup: VariableLookup,
): CopySource {
  const at = { line: ins.line, instruction: ins.text };
  let from: string;
  try {
    from = expandWord(ins.from ?? "", lookup, parsed.escape);
  } catch (err) {
    if (err instanceof SubstitutionError) throw new DockerfileError(`line ${ins.line}: ${err.message}`, at);
    throw err;
  }
  if (from === "") throw new DockerfileError(`line ${ins.line}: COPY --from needs a stage or an image`, at);
  const i = findStage(parsed, from, stage.index);
  if (i !== undefined) return { kind: "stage", index: i };
  const lower = from.toLowerCase();
  if (parsed.stages.some((s) => s.name === lower) || /^\d+$/.test(from)) {
    throw new DockerfileError(
      `line ${ins.line}: COPY --from=${from} refers to a stage that is not defined before it`,
      at,
    );
  }
  return { kind: "image", ref: from };
}
