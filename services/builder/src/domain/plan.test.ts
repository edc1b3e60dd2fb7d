// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are Dockerfile text, where ${VAR} is meant literally
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "./dockerfile.js";
import { DockerfileError, UnsupportedInstructionError } from "./errors.js";
import { outlineBuild, type PlannedStep, planStage, type StepOp } from "./plan.js";

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
    const hc = err("FROM node:20\nRUN true\nHEALTHCHECK CMD curl -f http://localhost/");
    expect(hc).toBeInstanceOf(UnsupportedInstructionError);
    expect(hc.line).toBe(3);
    expect(hc.instruction).toBe("HEALTHCHECK CMD curl -f http://localhost/");
    expect(hc.message).toMatch(/^line 3: HEALTHCHECK is not supported/);
    expect(err("FROM node:20\nONBUILD RUN x").line).toBe(2);
    expect(err("FROM node:20\nCOPY --chmod=755 a /b").message).toMatch(/COPY --chmod is not supported/);
    expect(err("FROM node:20\nADD --from=x a /b").message).toMatch(/ADD --from is not supported/);
    expect(err("FROM node:20\nRUN --mount=type=cache,target=/x true").line).toBe(2);
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
