import { posix } from "node:path";
import { hostArchitecture, type ImageHealthcheck, type ImageRuntimeConfig } from "@hangar/oci";
import {
  type CommandForm,
  type HealthcheckFlags,
  heredocMark,
  type Instruction,
  type ParsedDockerfile,
  type ParsedStage,
  parseTrigger,
  type RawPair,
} from "./dockerfile.js";
import { DockerfileError } from "./errors.js";
import { MountSpecError, parseRunMount, type RunMount } from "./run-mounts.js";
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
  | { kind: "workdir"; path: string; user: string }
  | {
      kind: "run";
      argv: string[];
      env: string[];
      cwd: string;
      user: string;
      /** `RUN --network=` as written; undefined when not written (the platform's policy decides). */
      network: "default" | "none" | undefined;
      /** `RUN --mount=`s, their sources resolved. */
      mounts: RunMount<CopySource>[];
      /** A `#!` heredoc, written to `path` (executable) and run as the command, as BuildKit does. */
      script: { path: string; content: string } | undefined;
    }
  | {
      kind: "copy";
      add: boolean;
      source: CopySource;
      /** Paths (or globs) in the source, as written after substitution. */
      sources: string[];
      /** Files made from heredocs (`COPY <<NAME dest`), named NAME in a destination folder. */
      inline: Array<{ name: string; content: string }>;
      /** `--chmod`: the mode of what is copied (files and folders), instead of the source's. */
      chmod: number | undefined;
      /** ADD `--checksum`: the digest a URL's content must have. */
      checksum: string | undefined;
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
  /** MAINTAINER, the image's author. */
  author: string | undefined;
  /** How many of the steps are the base image's ONBUILD triggers (numbered right after its FROM). */
  triggers: number;
}

/** The one platform this builder builds for: the host's. */
export function buildPlatform(): { os: string; architecture: string; platform: string } {
  const architecture = hostArchitecture();
  return { os: "linux", architecture, platform: `linux/${architecture}` };
}

/** BuildKit's automatic platform ARGs: in scope for FROM, and in a stage once it declares them. */
export function platformArgs(): Map<string, string> {
  const p = buildPlatform();
  const args = new Map<string, string>();
  for (const prefix of ["BUILD", "TARGET"]) {
    args.set(`${prefix}PLATFORM`, p.platform);
    args.set(`${prefix}OS`, p.os);
    args.set(`${prefix}ARCH`, p.architecture);
    args.set(`${prefix}VARIANT`, "");
  }
  return args;
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
      const at = { line: ins.line, instruction: ins.text };
      const froms =
        ins.kind === "COPY" && ins.from !== undefined
          ? [ins.from]
          : ins.kind === "RUN"
            ? ins.mounts.flatMap((spec) => {
                const m = outlineMount(spec, vars, parsed.escape, at);
                return m.type === "bind" && m.from.kind === "named" ? [m.from.name] : [];
              })
            : [];
      for (const from of froms) {
        const src = resolveSourceName(
          parsed,
          stage,
          from,
          vars,
          at,
          ins.kind === "COPY" ? "COPY --from" : "--mount from",
        );
        if (src.kind === "stage") visit(src.index);
      }
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
  // The base's triggers run here first; the new image has only the triggers this stage declares.
  const triggers = (config.OnBuild ?? []).map((t) => parseTrigger(t, head.parsed.from.line, parsed.escape));
  delete config.OnBuild;
  const env = new Map<string, string>((config.Env ?? []).map(splitEnv));
  const args = new Map<string, string | undefined>();
  const lookup: VariableLookup = (name) => env.get(name) ?? args.get(name);
  let cmdSet = false;
  let author: string | undefined;
  const shell = () => config.Shell ?? ["/bin/sh", "-c"];
  const argvOf = (ins: CommandForm) => (ins.form === "exec" ? ins.argv : [...shell(), ins.command]);
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
  const instructions: Instruction[] = [...triggers, ...head.parsed.instructions];
  instructions.forEach((ins, i) => {
    const at = { line: ins.line, instruction: ins.text };
    const expand = (raw: string, rawQuotes = false) => {
      try {
        return expandWord(raw, lookup, parsed.escape, { rawQuotes });
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
        // The folders it creates are the USER's, as BuildKit makes them.
        const user = config.User ?? "";
        push(`WORKDIR ${path}${user !== "" ? ` USER ${user}` : ""}`, { kind: "workdir", path, user });
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
      case "MAINTAINER": {
        author = ins.raw;
        push(`MAINTAINER ${author}`, { kind: "config" });
        return;
      }
      case "VOLUME": {
        const paths = ins.raw.map((r) => expand(r));
        if (paths.some((p) => p.trim() === ""))
          throw new DockerfileError(`line ${ins.line}: VOLUME names an empty path`, at);
        config.Volumes = { ...config.Volumes };
        for (const p of paths) config.Volumes[p] = {};
        push(`VOLUME ${JSON.stringify(paths)}`, { kind: "config" });
        return;
      }
      case "SHELL": {
        config.Shell = ins.argv;
        push(`SHELL ${JSON.stringify(ins.argv)}`, { kind: "config" });
        return;
      }
      case "HEALTHCHECK": {
        config.Healthcheck = ins.check.none
          ? { Test: ["NONE"] }
          : healthcheck(ins.check, ins.check.flags, expand, ins.line, at);
        push(`HEALTHCHECK ${JSON.stringify(config.Healthcheck)}`, { kind: "config" });
        return;
      }
      case "ONBUILD": {
        config.OnBuild = [...(config.OnBuild ?? []), ins.trigger];
        push(`ONBUILD ${ins.trigger}`, { kind: "config" });
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
        const cwd = config.WorkingDir || "/";
        let argv = argvOf(ins);
        let script: { path: string; content: string } | undefined;
        const only =
          ins.heredocs.length === 1 && ins.form === "shell"
            ? heredocMark(ins.command.split("\n")[0]?.trim() ?? "")
            : undefined;
        const doc = ins.heredocs[0];
        if (only && doc) {
          // A RUN that is one heredoc runs its body: as a script when it has a #! line, else with the shell.
          if (doc.content.startsWith("#!")) {
            script = { path: `/dev/pipes/${doc.name}`, content: doc.content };
            argv = [script.path];
          } else {
            argv = [...shell(), doc.content];
          }
        }
        const network = runNetwork(ins.network, ins.line, at);
        const mounts = ins.mounts.map((spec) => {
          let mount: RunMount;
          try {
            mount = parseRunMount(expand(spec), cwd);
          } catch (err) {
            if (err instanceof MountSpecError)
              throw new DockerfileError(`line ${ins.line}: ${err.message}`, at);
            throw err;
          }
          if (mount.type !== "bind") return mount;
          const from =
            mount.from.kind === "context"
              ? ({ kind: "context" } as const)
              : resolveSourceName(parsed, head.parsed, mount.from.name, lookup, at, "--mount from");
          return { ...mount, from };
        });
        const runEnv = new Map(env);
        if (!runEnv.has("PATH")) runEnv.set("PATH", DEFAULT_PATH);
        for (const [k, v] of args) if (v !== undefined && !env.has(k)) runEnv.set(k, v);
        const op: StepOp = {
          kind: "run",
          argv,
          env: [...runEnv].map(([k, v]) => `${k}=${v}`),
          cwd,
          user: config.User ?? "",
          network,
          mounts,
          script,
        };
        // Build args reach the command's environment, so they are part of what it ran.
        const argPairs = [...args].filter(([, v]) => v !== undefined);
        // Mounts (their specs, never a secret's value) and the network are part of what it ran.
        const extra = [
          argPairs.length > 0 ? ` ARGS ${JSON.stringify(argPairs)}` : "",
          network !== undefined ? ` NETWORK ${network}` : "",
          mounts.length > 0 ? ` MOUNTS ${JSON.stringify(mounts)}` : "",
          script ? ` SCRIPT ${JSON.stringify(script.content)}` : "",
        ];
        push(`RUN ${JSON.stringify(argv)}${extra.join("")}`, op);
        return;
      }
      case "COPY":
      case "ADD": {
        const docs = new Map(ins.heredocs.map((d) => [d.name, d]));
        const inline: Array<{ name: string; content: string }> = [];
        const words: string[] = [];
        ins.raw.forEach((raw, n) => {
          const mark = n < ins.raw.length - 1 ? heredocMark(raw) : undefined;
          const doc = mark ? docs.get(mark.name) : undefined;
          if (doc)
            inline.push({ name: doc.name, content: doc.expand ? expand(doc.content, true) : doc.content });
          else words.push(expand(raw));
        });
        const destRaw = words.pop() as string;
        const source =
          ins.kind === "COPY" && ins.from !== undefined
            ? resolveSourceName(parsed, head.parsed, ins.from, lookup, at, "COPY --from")
            : ({ kind: "context" } as const);
        const chown = ins.chown !== undefined ? expand(ins.chown) : undefined;
        const chmod = ins.chmod !== undefined ? octalMode(expand(ins.chmod), ins.line, at) : undefined;
        const checksum = ins.checksum !== undefined ? expand(ins.checksum) : undefined;
        if (checksum !== undefined) {
          if (!/^sha256:[0-9a-f]{64}$/.test(checksum))
            throw new DockerfileError(
              `line ${ins.line}: --checksum=${checksum} is not sha256:<64 hex digits>`,
              at,
            );
          if (!words.every((w) => /^https?:\/\//i.test(w)))
            throw new DockerfileError(`line ${ins.line}: ADD --checksum is only for http(s) URL sources`, at);
        }
        const destIsDir = destRaw.endsWith("/") || destRaw === "." || destRaw === "";
        const dest = posix.resolve(config.WorkingDir || "/", destRaw);
        if (words.length + inline.length > 1 && !destIsDir) {
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
          inline,
          chmod,
          checksum,
          dest,
          destIsDir,
          chown,
        };
        // Fields that are unset stay out, so a plain COPY keeps the key it always had.
        const extra = {
          ...(inline.length > 0 ? { inline } : {}),
          ...(chmod !== undefined ? { chmod } : {}),
          ...(checksum !== undefined ? { checksum } : {}),
        };
        push(
          `${ins.kind} ${JSON.stringify({ source, sources: words, dest, destIsDir, chown: chown ?? null, ...extra })}`,
          op,
        );
        return;
      }
      case "FROM":
        throw new Error("FROM inside a stage");
    }
  });
  return { steps, config, author, triggers: triggers.length };
}

/** A RUN's mount parsed for the outline, which needs only the stages binds read from. */
function outlineMount(
  spec: string,
  lookup: VariableLookup,
  escapeChar: string,
  at: { line: number; instruction: string },
): RunMount {
  try {
    return parseRunMount(expandWord(spec, lookup, escapeChar), "/");
  } catch (err) {
    if (err instanceof MountSpecError || err instanceof SubstitutionError)
      throw new DockerfileError(`line ${at.line}: ${err.message}`, at);
    throw err;
  }
}

function runNetwork(raw: string | undefined, line: number, at: { line: number; instruction: string }) {
  if (raw === undefined) return undefined;
  if (raw === "default" || raw === "none") return raw;
  if (raw === "host") {
    throw new DockerfileError(
      `line ${line}: RUN --network=host is refused: a build never gets the host's network (use --network=default, the build's own network with NAT, or --network=none)`,
      at,
    );
  }
  throw new DockerfileError(`line ${line}: RUN --network=${raw} is not default or none`, at);
}

function octalMode(raw: string, line: number, at: { line: number; instruction: string }): number {
  if (!/^[0-7]{3,4}$/.test(raw)) {
    throw new DockerfileError(`line ${line}: --chmod=${raw} is not an octal mode (such as 755 or 0644)`, at);
  }
  return Number.parseInt(raw, 8);
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration ("30s", "1m30s", "500ms") in nanoseconds, as Docker reads HEALTHCHECK's flags. */
export function parseDuration(raw: string): number | undefined {
  if (raw === "0") return 0;
  const parts = [...raw.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== raw) return undefined;
  return Math.round(parts.reduce((n, p) => n + Number(p[1]) * (DURATION_UNITS[p[2] as string] as number), 0));
}

function healthcheck(
  cmd: CommandForm,
  flags: HealthcheckFlags,
  expand: (raw: string) => string,
  line: number,
  at: { line: number; instruction: string },
): ImageHealthcheck {
  const check: ImageHealthcheck = {
    Test: cmd.form === "exec" ? ["CMD", ...cmd.argv] : ["CMD-SHELL", cmd.command],
  };
  const durations: Array<[keyof HealthcheckFlags, "Interval" | "Timeout" | "StartPeriod" | "StartInterval"]> =
    [
      ["interval", "Interval"],
      ["timeout", "Timeout"],
      ["startPeriod", "StartPeriod"],
      ["startInterval", "StartInterval"],
    ];
  for (const [flag, key] of durations) {
    const raw = flags[flag];
    if (raw === undefined) continue;
    const ns = parseDuration(expand(raw));
    // Docker refuses durations under a millisecond, except 0 (the default).
    if (ns === undefined || (ns !== 0 && ns < 1e6)) {
      throw new DockerfileError(
        `line ${line}: HEALTHCHECK --${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${raw} is not a duration of at least 1ms (such as 30s or 1m30s)`,
        at,
      );
    }
    if (ns !== 0) check[key] = ns;
  }
  if (flags.retries !== undefined) {
    const retries = expand(flags.retries);
    if (!/^\d+$/.test(retries))
      throw new DockerfileError(`line ${line}: HEALTHCHECK --retries=${retries} is not a whole number`, at);
    if (Number(retries) !== 0) check.Retries = Number(retries);
  }
  return check;
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
  const values = platformArgs();
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
  if (stage.from.platform !== undefined) {
    const platform = expandWord(stage.from.platform, lookup, parsed.escape);
    const host = buildPlatform().platform;
    if (platform !== host) {
      throw new DockerfileError(
        `line ${at.line}: FROM --platform=${platform} is refused: this builder builds for ${host} only`,
        at,
      );
    }
  }
  if (image.toLowerCase() === "scratch") return { kind: "scratch" };
  const earlier = findStage(parsed, image, stage.index);
  if (earlier !== undefined) return { kind: "stage", index: earlier };
  return { kind: "image", ref: image };
}

/** What COPY --from or a bind mount's from= names: an earlier stage, or an image. */
function resolveSourceName(
  parsed: ParsedDockerfile,
  stage: ParsedStage,
  raw: string,
  lookup: VariableLookup,
  at: { line: number; instruction: string },
  what: string,
): CopySource {
  let from: string;
  try {
    from = expandWord(raw, lookup, parsed.escape);
  } catch (err) {
    if (err instanceof SubstitutionError) throw new DockerfileError(`line ${at.line}: ${err.message}`, at);
    throw err;
  }
  if (from === "") throw new DockerfileError(`line ${at.line}: ${what} needs a stage or an image`, at);
  const i = findStage(parsed, from, stage.index);
  if (i !== undefined) return { kind: "stage", index: i };
  const lower = from.toLowerCase();
  if (parsed.stages.some((s) => s.name === lower) || /^\d+$/.test(from)) {
    throw new DockerfileError(
      `line ${at.line}: ${what}=${from} refers to a stage that is not defined before it`,
      at,
    );
  }
  return { kind: "image", ref: from };
}
