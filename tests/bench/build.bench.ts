// The image builder against buildah, in this process, over one nats-server of its own (blobs,
// registry and layer cache in JetStream) and the test kit's docker-registry (tests/images/compare.ts):
// - The Express app of issue 14 (tests/images/corpus/express-issue: node:20-slim stages, `npm ci`
//   from the npm registry in RUN, adduser, USER app). Its bases are made (or found in the host
//   cache) and pushed into the local registry first, timed apart.
//   - cold_build_s / buildah_cold_s: the first build, Hangar with an empty layer cache and an empty
//     local layer folder, buildah (--isolation chroot --layers) with empty storage, pulling the same
//     bases from the local registry.
//   - rebuild_s / buildah_rebuild_s: a build after a code-only change (server.js), same builder;
//     the median of 3, each after a different change. Both take the dependency steps from their cache.
//   - rebuild_ratio: rebuild_s / cold_build_s (target <= 0.2).
//   - pull_unpack_s: a host with an empty cache fetches every layer of the last Hangar image from the
//     blob store and unpacks it (the host agent's LayerStore, layers in parallel); median of 3.
//   When a build of the app fails, its figures are null and the table says why.
// - pull_mb_s / skopeo_umoci_mb_s: a host agent's pull and unpack of a ~200 MB image from a
//   registry (until it can run) against `skopeo copy` + `umoci unpack` of the same image
//   (tests/bench/pull.ts); pull_and_fill_mb_s: until its cache fill into Hangar's registry has ended.
// - corpus_ok / corpus_total: every corpus entry built with both builders and compared (config and
//   files); the table has one row per entry.
// HANGAR_BENCH_BUILD_PARTS=express,pull,corpus (the default: all three) runs only the parts named;
// the figures of a part not run are null. HANGAR_BENCH_BUILD_CORPUS=a,b limits the corpus to those
// entries (corpus_total then counts them only).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { LayerStore } from "@hangar/oci";
import {
  agrees,
  CORPUS_DIR,
  corpusEntries,
  describeComparison,
  type ImageComparer,
  openComparer,
} from "../images/compare.js";
import { measurePullThroughput } from "./pull.js";
import { percentile, printTable, round } from "./stats.js";

const REBUILDS = 3;
const PULLS = 3;
const EXPRESS = "express-issue";

type Row = [string, string | number, string];

const seconds = (ms: number) => round(ms / 1000, 2);
const median = (xs: number[]) => percentile(xs, 50);

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { ms: performance.now() - t0, value };
}

/** The Express app's cold builds, code-only rebuilds and a host's pull of the result. */
async function expressFigures(comparer: ImageComparer, root: string) {
  const context = join(root, "context");
  cpSync(join(CORPUS_DIR, EXPRESS), context, { recursive: true });
  const server = join(context, "server.js");
  const original = readFileSync(server, "utf8");

  const bases = await timed(() => comparer.publishBases(context));
  const cold = await timed(() => comparer.buildWithHangar(context, "cold"));
  const buildahCold = await comparer.buildWithBuildah(context, "cold");
  const rebuilds: number[] = [];
  const buildahRebuilds: number[] = [];
  let last = cold.value.digest;
  for (let i = 1; i <= REBUILDS; i++) {
    writeFileSync(server, original.replace(`app: "${EXPRESS}"`, `app: "${EXPRESS}", change: ${i}`));
    const r = await comparer.buildWithHangar(context, `change-${i}`);
    rebuilds.push(r.seconds * 1000);
    last = r.digest;
    buildahRebuilds.push((await comparer.buildWithBuildah(context, `change-${i}`)).seconds * 1000);
  }

  const image = await comparer.deps.registry.resolve(`corpus@${last}`);
  const pulls: number[] = [];
  for (let i = 0; i < PULLS; i++) {
    const host = new LayerStore(mkdtempSync(join(root, "host-")), comparer.deps.blobs);
    pulls.push((await timed(() => Promise.all(image.manifest.layers.map((l) => host.dir(l.digest))))).ms);
  }
  const imageMb = image.manifest.layers.reduce((n, l) => n + l.size, 0) / 2 ** 20;
  return {
    basesMs: bases.ms,
    coldMs: cold.ms,
    buildahColdMs: buildahCold.seconds * 1000,
    rebuildMs: median(rebuilds),
    buildahRebuildMs: median(buildahRebuilds),
    pullMs: median(pulls),
    pullNote: `${image.manifest.layers.length} layers, ${round(imageMb, 1)} MiB compressed, empty host cache, median of ${PULLS}`,
  };
}

/** Every corpus entry compared: one table row each, and how many agree. */
async function corpusFigures(
  comparer: ImageComparer,
  entries: string[],
): Promise<{ rows: Row[]; ok: number; total: number }> {
  const rows: Row[] = [];
  let ok = 0;
  for (const entry of entries) {
    const result = await comparer.compare(entry).catch((e: Error) => e);
    if (result instanceof Error) {
      rows.push([`corpus ${entry}`, "FAILED", result.message.replace(/\s+/g, " ").slice(-300)]);
      continue;
    }
    if (agrees(result)) ok++;
    else process.stdout.write(`${describeComparison(result, 20)}\n`);
    const left = result.volatilePaths.length > 0 ? `, ${result.volatilePaths.length} volatile left out` : "";
    rows.push([
      `corpus ${entry}`,
      agrees(result) ? "same" : "DIFFERENT",
      `${result.filesCompared} files${left}; hangar ${result.hangarSeconds} s, buildah ${result.buildahSeconds} s`,
    ]);
  }
  return { rows, ok, total: entries.length };
}

const PARTS = ["express", "pull", "corpus"] as const;
type Part = (typeof PARTS)[number];

/** The parts HANGAR_BENCH_BUILD_PARTS names (all when unset); a name not a part is an error. */
export function benchParts(setting: string | undefined): Set<Part> {
  if (setting === undefined || setting.trim() === "") return new Set(PARTS);
  const parts = new Set<Part>();
  for (const name of setting.split(",").map((p) => p.trim())) {
    if (!(PARTS as readonly string[]).includes(name)) {
      throw new Error(`HANGAR_BENCH_BUILD_PARTS: "${name}" is not one of ${PARTS.join(", ")}`);
    }
    parts.add(name as Part);
  }
  return parts;
}

/** The corpus entries HANGAR_BENCH_BUILD_CORPUS names (all when unset); an unknown one is an error. */
function corpusSelection(setting: string | undefined): string[] {
  const all = corpusEntries();
  if (setting === undefined || setting.trim() === "") return all;
  const chosen = setting.split(",").map((e) => e.trim());
  const unknown = chosen.filter((e) => !all.includes(e));
  if (unknown.length > 0) {
    throw new Error(
      `HANGAR_BENCH_BUILD_CORPUS: no corpus entry ${unknown.join(", ")} (entries: ${all.join(", ")})`,
    );
  }
  return chosen;
}

export async function run(): Promise<Record<string, number | null>> {
  const parts = benchParts(process.env.HANGAR_BENCH_BUILD_PARTS);
  const entries = corpusSelection(process.env.HANGAR_BENCH_BUILD_CORPUS);
  const root = mkdtempSync(join(tmpdir(), "hangar-bench-build-"));
  const { comparer, close } = await openComparer();
  try {
    const express = parts.has("express")
      ? await expressFigures(comparer, root).catch((e: Error) => e)
      : undefined;
    const pull = parts.has("pull") ? await measurePullThroughput() : undefined;
    const corpus = parts.has("corpus") ? await corpusFigures(comparer, entries) : undefined;

    const expressRows: Row[] =
      express === undefined
        ? [["Express app", "not run", "HANGAR_BENCH_BUILD_PARTS leaves it out"]]
        : express instanceof Error
          ? [["Express app", "FAILED", express.message.replace(/\s+/g, " ").slice(-300)]]
          : [
              [
                "bases",
                seconds(express.basesMs),
                "s, made or found in the host cache, pushed to the local registry",
              ],
              [
                "cold build",
                seconds(express.coldMs),
                "s, Hangar, the Express app, empty layer cache and layer folder",
              ],
              [
                "buildah cold build",
                seconds(express.buildahColdMs),
                "s, empty storage, bases from the local registry",
              ],
              ["rebuild", seconds(express.rebuildMs), `s, Hangar, median of ${REBUILDS} code-only changes`],
              [
                "buildah rebuild",
                seconds(express.buildahRebuildMs),
                `s, buildah --layers, median of ${REBUILDS}`,
              ],
              [
                "rebuild ratio",
                round(express.rebuildMs / express.coldMs, 3),
                "rebuild / cold (target <= 0.2)",
              ],
              ["pull + unpack", seconds(express.pullMs), `s, ${express.pullNote}`],
            ];
    printTable([
      ...expressRows,
      ...(pull === undefined
        ? [["pull", "not run", "HANGAR_BENCH_BUILD_PARTS leaves it out"] as Row]
        : [
            ["pull (host agent)", round(pull.pullMbS, 1), `MB/s, ${pull.description}`] as Row,
            [
              "pull + cache fill",
              round(pull.pullAndFillMbS, 1),
              "MB/s, until the layers are stored in Hangar's registry too",
            ] as Row,
            [
              "skopeo + umoci",
              round(pull.skopeoUmociMbS, 1),
              "MB/s, the same image (target: pull >= 0.8 x this)",
            ] as Row,
          ]),
      ...(corpus === undefined
        ? [["corpus", "not run", "HANGAR_BENCH_BUILD_PARTS leaves it out"] as Row]
        : [
            ...corpus.rows,
            ["corpus", `${corpus.ok}/${corpus.total}`, "entries where both builders agree"] as Row,
          ]),
    ]);
    const figure = (f: (e: Exclude<typeof express, Error | undefined>) => number) =>
      express === undefined || express instanceof Error ? null : f(express);
    return {
      cold_build_s: figure((e) => seconds(e.coldMs)),
      rebuild_s: figure((e) => seconds(e.rebuildMs)),
      rebuild_ratio: figure((e) => round(e.rebuildMs / e.coldMs, 3)),
      pull_unpack_s: figure((e) => seconds(e.pullMs)),
      buildah_cold_s: figure((e) => seconds(e.buildahColdMs)),
      buildah_rebuild_s: figure((e) => seconds(e.buildahRebuildMs)),
      pull_mb_s: pull === undefined ? null : round(pull.pullMbS, 1),
      pull_and_fill_mb_s: pull === undefined ? null : round(pull.pullAndFillMbS, 1),
      skopeo_umoci_mb_s: pull === undefined ? null : round(pull.skopeoUmociMbS, 1),
      corpus_ok: corpus === undefined ? null : corpus.ok,
      corpus_total: corpus === undefined ? null : corpus.total,
    };
  } finally {
    await close();
    rmSync(root, { recursive: true, force: true });
  }
}
