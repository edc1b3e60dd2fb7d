// The image builder on examples/multistage (a build stage with a dev dependency, a slim runtime
// stage), in this process, against one nats-server it starts (blobs, registry and layer cache in
// JetStream, RUN steps in bubblewrap over overlayfs):
// - cold_build_s: the first build, with an empty layer cache and an empty local layer folder. The
//   node base image is made beforehand (it stands for a base image already pulled), and timed apart.
// - rebuild_s: a build after a code-only change (src/server.js), same builder; the median of 3, each
//   after a different change. The dependency steps come from the cache, the code steps run.
// - rebuild_ratio: rebuild_s / cold_build_s (target <= 0.2).
// - pull_unpack_s: a host with an empty cache fetches every layer of the last image from the blob
//   store and unpacks it (the host agent's LayerStore, layers in parallel); the median of 3, each
//   into a fresh folder.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { buildImage, openBuildDeps } from "@hangar/builder";
import { LayerStore, platformBaseImages } from "@hangar/oci";
import { startNatsServer } from "@hangar/testkit";
import { connect } from "@nats-io/transport-node";
import { repoRoot } from "../../scripts/platform.js";
import { percentile, printTable, round } from "./stats.js";

const REBUILDS = 3;
const PULLS = 3;

const seconds = (ms: number) => round(ms / 1000, 2);
const median = (xs: number[]) => percentile(xs, 50);

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { ms: performance.now() - t0, value };
}

export async function run(): Promise<Record<string, number>> {
  const root = mkdtempSync(join(tmpdir(), "hangar-bench-build-"));
  const nats = await startNatsServer({ storeDir: join(root, "nats") });
  const nc = await connect({ servers: nats.url });
  try {
    const { deps } = await openBuildDeps(nc, join(root, "builder"));
    const context = join(root, "context");
    cpSync(join(repoRoot, "examples", "multistage"), context, { recursive: true });
    const server = join(context, "src", "server.js");
    const original = readFileSync(server, "utf8");

    const base = await timed(() => platformBaseImages(deps.registry).make("node:20"));
    const build = (tag: string) =>
      timed(() =>
        buildImage(deps, {
          contextDir: context,
          workDir: mkdtempSync(join(root, "work-")),
          repository: "bench",
          tag,
        }),
      );

    const cold = await build("cold");
    const rebuilds: number[] = [];
    let last = cold.value;
    for (let i = 1; i <= REBUILDS; i++) {
      writeFileSync(server, original.replace("multistage v1", `multistage v1.${i}`));
      const r = await build(`change-${i}`);
      if (r.value.cachedSteps === 0) throw new Error("a code-only rebuild took nothing from the cache");
      rebuilds.push(r.ms);
      last = r.value;
    }

    const image = await deps.registry.resolve(`bench@${last.manifestDigest}`);
    const pulls: number[] = [];
    for (let i = 0; i < PULLS; i++) {
      const host = new LayerStore(mkdtempSync(join(root, "host-")), deps.blobs);
      const p = await timed(() => Promise.all(image.manifest.layers.map((l) => host.dir(l.digest))));
      pulls.push(p.ms);
    }

    const rebuild = median(rebuilds);
    const ratio = rebuild / cold.ms;
    const imageMb = image.manifest.layers.reduce((n, l) => n + l.size, 0) / 2 ** 20;
    printTable([
      [
        "node base image",
        seconds(base.ms),
        "s, made once per registry from the host's Node (not in the ratio)",
      ],
      ["cold build", seconds(cold.ms), `s, ${cold.value.totalSteps} steps, empty layer cache`],
      [
        "rebuild",
        seconds(rebuild),
        `s, median of ${REBUILDS} code-only changes (${last.cachedSteps}/${last.totalSteps} steps cached)`,
      ],
      ["rebuild ratio", round(ratio, 3), "rebuild / cold (target <= 0.2)"],
      [
        "pull + unpack",
        seconds(median(pulls)),
        `s, ${image.manifest.layers.length} layers, ${round(imageMb, 1)} MiB compressed, empty host cache, median of ${PULLS}`,
      ],
    ]);
    return {
      cold_build_s: seconds(cold.ms),
      rebuild_s: seconds(rebuild),
      rebuild_ratio: round(ratio, 3),
      pull_unpack_s: seconds(median(pulls)),
    };
  } finally {
    await nc.close();
    await nats.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
