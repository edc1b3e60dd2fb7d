// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are Dockerfile text, where ${VAR} is meant literally
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "./dockerfile.js";
import { DockerfileError, UnsupportedInstructionError } from "./errors.js";
import {
  buildPlatform,
  outlineBuild,
  type PlannedStep,
  parseDuration,
  planStage,
  type StepOp,
} from "./plan.js";

function plan(dockerfile: string, opts: { buildArgs?: Record<string, string>; target?: string } = {}) {
  const parsed = parseDockerfile(dockerfile);
  const outline = outlineBuild(parsed, opts);
  const plans = new Map<number, ReturnType<typeof planStage>>();
  for (const head of outline.stages) {
    const baseConfig =
      head.base.kind === "stage"
        ? (plans.get(head.base.index)?.config ?? {})
        : head.base.kind === "image"
          ? { Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=20.1.0"], Cmd: ["node"] }
          : {};
    plans.set(head.index, planStage(head, { parsed, baseConfig, buildArgs: opts.buildArgs ?? {} }));
  }
  const steps = [...plans.values()].flatMap((p) => p.steps);
  return { outline, plans, steps, final: plans.get(outline.target)?.config };
}

const op = <K extends StepOp["kind"]>(s: PlannedStep | undefined, kind: K) => {
  expect(s?.op.kind).toBe(kind);
  return s?.op as Extract<StepOp, { kind: K }>;
};

describe("Dockerfile planning", () => {
  it("numbers steps across the build and keeps each instruction's line", () => {
    const { steps, outline } = plan(
      'FROM node:20\n\nWORKDIR /app\nCOPY package.json ./\nRUN npm install\nCMD ["node", "server.js"]\n',
    );
    expect(outline.totalSteps).toBe(5);
    expect(steps.map((s) => [s.step, s.line, s.instruction])).toEqual([
      [1, 1, "FROM node:20"],
      [2, 3, "WORKDIR /app"],
      [3, 4, "COPY package.json ./"],
      [4, 5, "RUN npm install"],
      [5, 6, 'CMD ["node", "server.js"]'],
    ]);
  });

  it("builds the image config: env, cmd, entrypoint, workdir, user, ports, labels", () => {
    const { final } = plan(
      [
        "FROM node:20",
        "ENV APP=/srv PORT=3000",
        'LABEL org.example.name="my app" tier=web',
        "WORKDIR $APP",
        "WORKDIR sub",
        "USER node",
        "EXPOSE ${PORT} 9000/udp 7000-7001",
        'ENTRYPOINT ["node"]',
        "CMD server.js",
        "STOPSIGNAL SIGINT",
      ].join("\n"),
    );
    expect(final).toEqual({
      Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=20.1.0", "APP=/srv", "PORT=3000"],
      Labels: { "org.example.name": "my app", tier: "web" },
      WorkingDir: "/srv/sub",
      User: "node",
      ExposedPorts: { "3000/tcp": {}, "9000/udp": {}, "7000/tcp": {}, "7001/tcp": {} },
      Entrypoint: ["node"],
      Cmd: ["/bin/sh", "-c", "server.js"],
      StopSignal: "SIGINT",
    });
  });

  it("drops an inherited CMD when ENTRYPOINT is set, but keeps a CMD set before it in the stage", () => {
    expect(plan('FROM node:20\nENTRYPOINT ["node"]').final?.Cmd).toBeUndefined();
    expect(plan('FROM node:20\nCMD ["a.js"]\nENTRYPOINT ["node"]').final?.Cmd).toEqual(["a.js"]);
  });

  it("substitutes ENV pairs with the values from before the instruction, and base image env", () => {
    const { final } = plan("FROM node:20\nENV A=1\nENV A=2 B=$A C=${NODE_VERSION:-x} D='$A'");
    expect(final?.Env).toContain("B=1");
    expect(final?.Env).toContain("A=2");
    expect(final?.Env).toContain("C=20.1.0");
    expect(final?.Env).toContain("D=$A");
  });

  it("lets build args override ARG defaults, global ARGs reach FROM, and ARG values reach RUN's env", () => {
    const df =
      "ARG BASE=node\nARG MAJOR=20\nFROM ${BASE}:${MAJOR}\nARG MAJOR\nARG MODE=dev\nRUN echo $MODE\nWORKDIR /$MODE";
    const a = plan(df);
    expect(a.outline.stages[0]?.base).toEqual({ kind: "image", ref: "node:20" });
    const run = op(a.steps[3], "run");
    expect(run.env).toContain("MODE=dev");
    expect(run.env).toContain("MAJOR=20");
    expect(a.final?.WorkingDir).toBe("/dev");
    // RUN is not substituted by the builder: the shell expands it.
    expect(run.argv).toEqual(["/bin/sh", "-c", "echo $MODE"]);
    const b = plan(df, { buildArgs: { MAJOR: "22", MODE: "prod" } });
    expect(b.outline.stages[0]?.base).toEqual({ kind: "image", ref: "node:22" });
    expect(op(b.steps[3], "run").env).toContain("MODE=prod");
    expect(b.final?.WorkingDir).toBe("/prod");
    // ENV wins over an ARG of the same name, as in Docker.
    const c = plan("FROM node:20\nARG X=arg\nENV X=env\nRUN true");
    expect(op(c.steps[3], "run").env.filter((e) => e.startsWith("X="))).toEqual(["X=env"]);
  });

  it("does not carry ARGs of one stage into the next", () => {
    const { steps } = plan("FROM node:20 AS a\nARG X=1\nFROM a\nRUN true\nWORKDIR /w$X");
    expect(op(steps[3], "run").env.some((e) => e.startsWith("X="))).toBe(false);
    expect(op(steps[4], "workdir").path).toBe("/w");
    expect(op(plan("FROM node:20\nUSER node\nWORKDIR /home/node/app").steps[2], "workdir")).toEqual({
      kind: "workdir",
      path: "/home/node/app",
      user: "node",
    });
  });

  it("runs the shell form through /bin/sh -c and the exec form as written, in the workdir, with a default PATH", () => {
    const { steps } = plan(
      'FROM scratch\nWORKDIR /w\nRUN echo "a b" && \\\n  echo c\nRUN ["/bin/echo", "x y"]',
    );
    expect(op(steps[2], "run")).toEqual({
      kind: "run",
      argv: ["/bin/sh", "-c", 'echo "a b" &&   echo c'],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      cwd: "/w",
      user: "",
      network: undefined,
      mounts: [],
      script: undefined,
    });
    expect(op(steps[3], "run").argv).toEqual(["/bin/echo", "x y"]);
  });

  it("resolves COPY destinations against WORKDIR and keeps the directory hint", () => {
    const { steps } = plan(
      'FROM node:20\nWORKDIR /app\nCOPY a.txt .\nCOPY a.txt b/\nCOPY a.txt c\nCOPY a.txt /abs/\nCOPY --chown=node:node *.json ./\nCOPY ["with space.txt", "/x y/"]',
    );
    const copies = steps.slice(2).map((s) => op(s, "copy"));
    expect(copies.map((c) => [c.dest, c.destIsDir])).toEqual([
      ["/app", true],
      ["/app/b", true],
      ["/app/c", false],
      ["/abs", true],
      ["/app", true],
      ["/x y", true],
    ]);
    expect(copies[4]?.chown).toBe("node:node");
    expect(copies[4]?.sources).toEqual(["*.json"]);
    expect(copies[5]?.sources).toEqual(["with space.txt"]);
  });

  it("refuses several sources into a destination without a trailing slash", () => {
    expect(() => plan("FROM node:20\nCOPY a b /dst")).toThrow(/must be a directory and end with a \//);
  });

  it("builds only the stages the target needs, through FROM and COPY --from", () => {
    const df = [
      "FROM node:20 AS deps",
      "RUN true",
      "FROM node:20 AS unused",
      "RUN false",
      "FROM deps AS build",
      "RUN true",
      "FROM node:20",
      "COPY --from=build /app/dist ./dist",
      "COPY --from=0 /x /x",
    ].join("\n");
    const { outline, steps } = plan(df);
    expect(outline.stages.map((s) => s.index)).toEqual([0, 2, 3]);
    expect(outline.target).toBe(3);
    expect(outline.stages[1]?.base).toEqual({ kind: "stage", index: 0 });
    expect(op(steps.at(-2), "copy").source).toEqual({ kind: "stage", index: 2 });
    expect(op(steps.at(-1), "copy").source).toEqual({ kind: "stage", index: 0 });
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const t = plan(df, { target: "Build" });
    expect(t.outline.stages.map((s) => s.index)).toEqual([0, 2]);
    expect(() => plan(df, { target: "nope" })).toThrow(
      /target stage "nope" is not in the Dockerfile \(stages: deps, unused, build\)/,
    );
  });

  it("treats COPY --from of an unknown name as an image, and of a later stage as an error", () => {
    const { steps } = plan("FROM node:20\nCOPY --from=node:20 /usr/local/bin/node /node");
    expect(op(steps[1], "copy").source).toEqual({ kind: "image", ref: "node:20" });
    expect(() =>
      plan("FROM node:20\nCOPY --from=later /a /b\nFROM node:20 AS later", { target: "0" }),
    ).toThrow(/not defined before it/);
  });

  it("fails unsupported instructions and flags with their line", () => {
    const err = (df: string) => {
      try {
        plan(df);
      } catch (e) {
        return e as DockerfileError;
      }
      throw new Error("expected a failure");
    };
    const parents = err("FROM node:20\nRUN true\nCOPY --parents a /b/");
    expect(parents).toBeInstanceOf(UnsupportedInstructionError);
    expect(parents.line).toBe(3);
    expect(parents.instruction).toBe("COPY --parents a /b/");
    expect(parents.message).toMatch(/^line 3: COPY --parents is not supported/);
    expect(err("FROM node:20\nONBUILD FROM x").line).toBe(2);
    expect(err("FROM node:20\nCOPY --chmod=u+x a /b").message).toMatch(/--chmod=u\+x is not an octal mode/);
    expect(err("FROM node:20\nADD --from=x a /b").message).toMatch(/ADD --from is not supported/);
    expect(err("FROM node:20\nRUN --mount=type=ssh true").message).toMatch(/type=ssh is not supported/);
    expect(err("FROM node:20\nRUN --mount=type=cache true").message).toMatch(/needs target=<path>/);
    expect(err("FROM node:20\nRUN --network=host true").message).toMatch(/--network=host is refused/);
    expect(err("FROM node:20\nRUN --network=bridge true").message).toMatch(/not default or none/);
    expect(err("FROM --platform=linux/s390x node:20").message).toMatch(/builds for linux\/\w+ only/);
    expect(err("FROM node:20\nSHELL bash -c").message).toMatch(/SHELL takes a JSON array/);
    expect(err("FROM node:20\nHEALTHCHECK --interval=soon CMD true").message).toMatch(/not a duration/);
    expect(err("FROM node:20\nHEALTHCHECK NONE --x").message).toMatch(/HEALTHCHECK NONE takes no/);
    expect(err("FROM node:20\nADD --checksum=sha256:00 a /b").message).toMatch(/is not sha256/);
    expect(err("FROM node:20\nRUN <<EOF\necho").message).toMatch(/has no closing EOF/);
    const unknown = err("FROM node:20\n\nFRUM x");
    expect(unknown).toBeInstanceOf(DockerfileError);
    expect(unknown.message).toBe("line 3: unknown instruction FRUM");
    expect(err("RUN true\nFROM node:20").message).toMatch(/before the first FROM/);
    expect(err("# nothing").message).toMatch(/no FROM/);
    expect(err("FROM node:20\nCOPY onlyone").message).toMatch(/COPY needs <source>... <destination>/);
    expect(err("FROM node:20\nEXPOSE http").message).toMatch(/EXPOSE http is not a port/);
    expect(err("FROM node:20\nWORKDIR ${X%%y}").line).toBe(2);
  });
});

describe("BuildKit's Dockerfile features", () => {
  it("notes an ignored # syntax= line and keeps # escape= working", () => {
    const parsed = parseDockerfile(
      "# syntax=docker/dockerfile:1\n# escape=`\nFROM node:20\nRUN echo a `\n  b\n",
    );
    expect(parsed.notes).toEqual([
      "# syntax=docker/dockerfile:1 ignored: Hangar's builder implements the Dockerfile frontend itself",
    ]);
    expect(parsed.escape).toBe("`");
    expect(parseDockerfile("FROM node:20").notes).toEqual([]);
  });

  it("takes FROM from an ARG before it, and a stage's ARG without a value picks up the global default", () => {
    const df = [
      "ARG APP_NODE=20.18.1",
      "ARG VARIANT",
      "FROM node:${APP_NODE}-${VARIANT:-slim} AS base",
      "ARG APP_NODE",
      "RUN echo ${APP_NODE:+v$APP_NODE}",
    ].join("\n");
    const { outline, steps } = plan(df);
    expect(outline.stages[0]?.base).toEqual({ kind: "image", ref: "node:20.18.1-slim" });
    expect(op(steps[2], "run").env).toContain("APP_NODE=20.18.1");
    expect(plan(df, { buildArgs: { APP_NODE: "22.1.0" } }).outline.stages[0]?.base).toEqual({
      kind: "image",
      ref: "node:22.1.0-slim",
    });
  });

  it("accepts --platform of the host's platform and sets BuildKit's platform ARGs", () => {
    const arch = buildPlatform().architecture;
    const { steps } = plan(
      "FROM --platform=$BUILDPLATFORM node:20\nARG TARGETARCH\nARG TARGETOS\nRUN echo $TARGETOS/$TARGETARCH",
    );
    const env = op(steps[3], "run").env;
    expect(env).toContain(`TARGETARCH=${arch}`);
    expect(env).toContain("TARGETOS=linux");
    // Undeclared, they stay out of RUN's environment, as in BuildKit.
    expect(env.some((e) => e.startsWith("BUILDPLATFORM="))).toBe(false);
    expect(plan(`FROM --platform=linux/${arch} node:20`).outline.stages).toHaveLength(1);
  });

  it("runs shell forms through SHELL and records it in the config", () => {
    const { steps, final } = plan(
      'FROM node:20\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN a | b\nCMD start',
    );
    expect(op(steps[2], "run").argv).toEqual(["/bin/bash", "-o", "pipefail", "-c", "a | b"]);
    expect(final?.Shell).toEqual(["/bin/bash", "-o", "pipefail", "-c"]);
    expect(final?.Cmd).toEqual(["/bin/bash", "-o", "pipefail", "-c", "start"]);
  });

  it("runs RUN heredocs: a body through the shell, a #! body as a script, several through the shell as written", () => {
    const { steps } = plan(
      [
        "FROM node:20",
        "RUN <<EOF",
        "echo one",
        "echo two",
        "EOF",
        "RUN <<-'PY'",
        "\t#!/usr/bin/env python3",
        "\tprint('hi')",
        "\tPY",
        "RUN <<A cat > /a && <<B cat > /b",
        "a",
        "A",
        "b",
        "B",
      ].join("\n"),
    );
    expect(op(steps[1], "run").argv).toEqual(["/bin/sh", "-c", "echo one\necho two\n"]);
    const script = op(steps[2], "run");
    expect(script.argv).toEqual(["/dev/pipes/PY"]);
    expect(script.script).toEqual({
      path: "/dev/pipes/PY",
      content: "#!/usr/bin/env python3\nprint('hi')\n",
    });
    expect(op(steps[3], "run").argv).toEqual(["/bin/sh", "-c", "<<A cat > /a && <<B cat > /b\na\nA\nb\nB"]);
  });

  it("makes COPY <<EOF files, expanding variables unless the delimiter is quoted, with --chmod", () => {
    const { steps } = plan(
      [
        "FROM node:20",
        "ARG WHO=world",
        "COPY --chmod=755 <<EOF /app/run.sh",
        '#!/bin/sh\necho "hello $WHO"',
        "EOF",
        "COPY <<'RAW' <<TWO /etc/conf/",
        "$WHO",
        "RAW",
        "${WHO}2",
        "TWO",
        "COPY --link --chmod=0644 a.txt /a.txt",
      ].join("\n"),
    );
    const one = op(steps[2], "copy");
    expect(one.inline).toEqual([{ name: "EOF", content: '#!/bin/sh\necho "hello world"\n' }]);
    expect(one.sources).toEqual([]);
    expect([one.dest, one.destIsDir, one.chmod]).toEqual(["/app/run.sh", false, 0o755]);
    expect(op(steps[3], "copy").inline).toEqual([
      { name: "RAW", content: "$WHO\n" },
      { name: "TWO", content: "world2\n" },
    ]);
    expect(op(steps[4], "copy")).toMatchObject({ sources: ["a.txt"], chmod: 0o644, inline: [] });
  });

  it("resolves RUN mounts and the network, and keys the step on their specs", () => {
    const df = [
      "FROM node:20 AS deps",
      "FROM node:20",
      "WORKDIR /app",
      "ARG CACHE=npm",
      "RUN --network=none --mount=type=cache,id=$CACHE,target=/root/.npm,sharing=locked,uid=1000,mode=0700 \\",
      "    --mount=type=secret,id=token,env=TOKEN --mount=type=bind,from=deps,source=/usr,target=mnt,rw npm ci",
    ].join("\n");
    const { outline, steps } = plan(df);
    expect(outline.stages.map((s) => s.index)).toEqual([0, 1]);
    const run = op(steps.at(-1), "run");
    expect(run.network).toBe("none");
    expect(run.mounts).toEqual([
      {
        type: "cache",
        id: "npm",
        target: "/root/.npm",
        readOnly: false,
        sharing: "locked",
        uid: 1000,
        gid: 0,
        mode: 0o700,
      },
      {
        type: "secret",
        id: "token",
        target: undefined,
        env: "TOKEN",
        required: false,
        uid: 0,
        gid: 0,
        mode: 0o400,
      },
      { type: "bind", target: "/app/mnt", source: "usr", from: { kind: "stage", index: 0 }, readWrite: true },
    ]);
    expect(steps.at(-1)?.resolved).toMatch(/NETWORK none MOUNTS /);
  });

  it("records VOLUME, HEALTHCHECK (nanoseconds), ONBUILD, STOPSIGNAL and MAINTAINER", () => {
    const { final, plans } = plan(
      [
        "FROM node:20",
        'VOLUME ["/data", "/logs"]',
        "VOLUME /cache",
        "HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl -f http://localhost/ || exit 1",
        "ONBUILD COPY . /app",
        "ONBUILD RUN npm ci",
        "STOPSIGNAL SIGTERM",
        "MAINTAINER Jane <jane@example.com>",
      ].join("\n"),
    );
    expect(final?.Volumes).toEqual({ "/data": {}, "/logs": {}, "/cache": {} });
    expect(final?.Healthcheck).toEqual({
      Test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
      Interval: 90e9,
      Timeout: 500e6,
      Retries: 3,
    });
    expect(final?.OnBuild).toEqual(["COPY . /app", "RUN npm ci"]);
    expect(final?.StopSignal).toBe("SIGTERM");
    expect(plans.get(0)?.author).toBe("Jane <jane@example.com>");
    expect(plan('FROM node:20\nHEALTHCHECK CMD ["node", "check.js"]').final?.Healthcheck).toEqual({
      Test: ["CMD", "node", "check.js"],
    });
    expect(plan("FROM node:20\nHEALTHCHECK NONE").final?.Healthcheck).toEqual({ Test: ["NONE"] });
    expect(parseDuration("2h45m0.5s")).toBe(9900.5e9);
  });

  it("runs the base's ONBUILD triggers right after FROM, numbered there, and does not pass them on", () => {
    const parsed = parseDockerfile("FROM parent\nRUN echo mine");
    const [head] = outlineBuild(parsed).stages;
    if (!head) throw new Error("no stage");
    const p = planStage(head, {
      parsed,
      baseConfig: { OnBuild: ["COPY . /app", "RUN echo trigger"] },
    });
    expect(p.triggers).toBe(2);
    expect(p.steps.map((s) => [s.step, s.line, s.instruction, s.op.kind])).toEqual([
      [1, 1, "FROM parent", "from"],
      [2, 1, "COPY . /app", "copy"],
      [3, 1, "RUN echo trigger", "run"],
      [4, 2, "RUN echo mine", "run"],
    ]);
    expect(p.config.OnBuild).toBeUndefined();
  });
});
