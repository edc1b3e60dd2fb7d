import { describe, expect, it } from "vitest";
import { baseKey, stepInputs, stepKey } from "./cache-key.js";
import { parseDockerfile } from "./dockerfile.js";
import { outlineBuild, planStage } from "./plan.js";

/** The chain of keys of a one-stage build, with the content digest of each COPY given in order. */
function keys(
  dockerfile: string,
  contents: string[],
  opts: { buildArgs?: Record<string, string>; network?: boolean; base?: string } = {},
) {
  const parsed = parseDockerfile(dockerfile);
  const outline = outlineBuild(parsed, opts);
  const head = outline.stages[0];
  if (!head) throw new Error("no stage");
  const { steps } = planStage(head, { parsed, baseConfig: {}, buildArgs: opts.buildArgs ?? {} });
  let key = baseKey(head.base, { digest: opts.base ?? "sha256:base" });
  const copies = [...contents];
  return steps.map((s) => {
    if (s.op.kind === "from") return key;
    const contentDigest = s.op.kind === "copy" ? copies.shift() : undefined;
    key = stepKey(
      key,
      s.resolved,
      stepInputs(s.op, {
        contentDigest,
        stageKeys: new Map(),
        imageDigests: new Map(),
        network: opts.network ?? false,
      }),
    );
    return key;
  });
}

const DF =
  'FROM node:20\nWORKDIR /app\nCOPY package.json ./\nRUN npm install\nCOPY . .\nCMD ["node", "index.js"]';

describe("cache keys", () => {
  it("are stable for the same Dockerfile and inputs", () => {
    expect(keys(DF, ["pkg1", "code1"])).toEqual(keys(DF, ["pkg1", "code1"]));
  });

  it("keep the install step when only the code changed", () => {
    const a = keys(DF, ["pkg1", "code1"]);
    const b = keys(DF, ["pkg1", "code2"]);
    expect(b.slice(0, 4)).toEqual(a.slice(0, 4));
    expect(b[4]).not.toBe(a[4]);
    expect(b[5]).not.toBe(a[5]);
  });

  it("change from the COPY on when the dependency manifest changed", () => {
    const a = keys(DF, ["pkg1", "code1"]);
    const b = keys(DF, ["pkg2", "code1"]);
    expect(b.slice(0, 2)).toEqual(a.slice(0, 2));
    for (let i = 2; i < a.length; i++) expect(b[i]).not.toBe(a[i]);
  });

  it("change everything after a changed base image, instruction or substituted value", () => {
    const a = keys(DF, ["p", "c"]);
    expect(keys(DF, ["p", "c"], { base: "sha256:other" }).every((k, i) => k !== a[i])).toBe(true);
    const edited = keys(DF.replace("npm install", "npm ci"), ["p", "c"]);
    expect(edited.slice(0, 3)).toEqual(a.slice(0, 3));
    expect(edited[3]).not.toBe(a[3]);
    const arg = "FROM node:20\nARG MODE=dev\nRUN echo $MODE";
    expect(keys(arg, [])[2]).toBe(keys(arg, [], { buildArgs: { MODE: "dev" } })[2]);
    expect(keys(arg, [])[2]).not.toBe(keys(arg, [], { buildArgs: { MODE: "prod" } })[2]);
  });

  it("do not change for a comment or blank lines, and do for the network", () => {
    const a = keys(DF, ["p", "c"]);
    expect(keys(`# a comment\n\n${DF}`, ["p", "c"])).toEqual(a);
    expect(keys(DF, ["p", "c"], { network: true })[3]).not.toBe(a[3]);
  });

  it("depend on the source stage's key for COPY --from", () => {
    const op = {
      kind: "copy" as const,
      add: false,
      source: { kind: "stage" as const, index: 0 },
      sources: ["/a"],
      inline: [],
      chmod: undefined,
      checksum: undefined,
      dest: "/a",
      destIsDir: false,
      chown: undefined,
    };
    const ctx = (k: string) => ({ stageKeys: new Map([[0, k]]), imageDigests: new Map(), network: false });
    expect(stepKey("p", "COPY", stepInputs(op, ctx("k1")))).not.toBe(
      stepKey("p", "COPY", stepInputs(op, ctx("k2"))),
    );
  });
});
