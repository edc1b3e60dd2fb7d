// A host agent's pull of a ~200 MB image against skopeo + umoci (issue 14's acceptance 6:
// pull_mb_s >= 0.8 x skopeo_umoci_mb_s). The image (4 layers of 50 MB of random bytes, so gzip
// cannot shrink them) is pushed into Debian's docker-registry; the host agent's ImagePuller pulls it
// through an empty Hangar registry, as the agent does: every layer fetched, verified, spooled and
// unpacked into an empty layer cache, at which point the image can run (pull_mb_s); its cache fill
// into JetStream then goes on, and is timed too (pull_and_fill_mb_s). skopeo copies the same image
// into an OCI layout and umoci unpacks it, after the fill has ended. MB/s is the image's compressed
// size over the wall time, both from cold, the median of 3 alternating rounds.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BlobStore, cacheRepository, ImageRegistry, LayerStore } from "@hangar/oci";
import { startNatsServer, startTestRegistry, writeTestImageLayout } from "@hangar/testkit";
import { connect } from "@nats-io/transport-node";
import { ImagePuller } from "../../services/host-agent/src/images.js";

const exec = promisify(execFile);
const LAYERS = 4;
const LAYER_MB = 50;
const ROUNDS = 3;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** The outcome: both throughputs and what was pulled. */
export interface PullThroughput {
  /** Until the image can run: every layer unpacked and verified (the cache fill may go on). */
  pullMbS: number;
  /** Until the cache fill into Hangar's registry has ended too. */
  pullAndFillMbS: number;
  skopeoUmociMbS: number;
  description: string;
}

/** Measures a host agent's pull + unpack against skopeo copy + umoci unpack of the same ~200 MB image. */
export async function measurePullThroughput(): Promise<PullThroughput> {
  const root = mkdtempSync(join(tmpdir(), "hangar-bench-pull-"));
  const nats = await startNatsServer();
  const registry = await startTestRegistry({ auth: "basic" });
  const nc = await connect({ servers: nats.url });
  try {
    const layout = join(root, "layout");
    writeTestImageLayout(layout, "1", [
      {
        architecture: "amd64",
        files: { "/data/part-0": randomBytes(LAYER_MB * 2 ** 20) },
        moreLayers: Array.from({ length: LAYERS - 1 }, (_, i) => ({
          [`/data/part-${i + 1}`]: randomBytes(LAYER_MB * 2 ** 20),
        })),
      },
    ]);
    await registry.push(`oci:${layout}:1`, "bench/big:1", { all: true });
    const ref = `${registry.host}/bench/big:1`;

    const pullS: number[] = [];
    const filledS: number[] = [];
    const skopeoS: number[] = [];
    let bytes = 0;
    let layers = 0;
    // Alternating rounds, each from cold (empty buckets, layer cache and OCI layout): one round's
    // figures swing by a third on this shared 2-core machine, so the medians are reported.
    for (let round = 0; round < ROUNDS; round++) {
      const blobs = await BlobStore.open(nc, { bucket: `bench-pull-blobs-${round}` });
      const images = await ImageRegistry.open(nc, blobs, { bucket: `bench-pull-registry-${round}` });
      const puller = new ImagePuller({
        registry: images,
        layers: new LayerStore(join(root, `layers-${round}`), blobs),
        logger: { info() {}, warn() {} },
        // As the host agent does: layers spooled, stored after the pull (the cache fill, timed apart).
        spoolDir: join(root, `pulls-${round}`),
        upstreams: { [registry.host]: registry.url },
        credentials: async () => ({ username: registry.username, password: registry.password }),
      });
      let started = performance.now();
      await puller.pull(ref, { org: "bench", orgOf: async () => undefined });
      pullS.push((performance.now() - started) / 1000);
      // The peer's round starts once the fill has ended, so it never runs beside it.
      await puller.cacheFilled();
      filledS.push((performance.now() - started) / 1000);
      const image = await images.resolveIn(cacheRepository(registry.host, "bench/big"), "1", ref);
      bytes = (image?.manifest.layers ?? []).reduce((n, l) => n + l.size, 0);
      layers = image?.manifest.layers.length ?? 0;

      started = performance.now();
      const layout = join(root, `skopeo-${round}`);
      await exec("skopeo", [
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-creds",
        `${registry.username}:${registry.password}`,
        `docker://${ref}`,
        `oci:${layout}:1`,
      ]);
      await exec("umoci", ["unpack", "--image", `${layout}:1`, join(root, `bundle-${round}`)]);
      skopeoS.push((performance.now() - started) / 1000);
    }
    const mb = bytes / 1e6;
    const secs = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(" / ");
    const ratios = pullS.map((p, i) => ((skopeoS[i] ?? 0) / p).toFixed(2)).join(" / ");
    return {
      pullMbS: mb / median(pullS),
      pullAndFillMbS: mb / median(filledS),
      skopeoUmociMbS: mb / median(skopeoS),
      description: `${Math.round(mb)} MB in ${layers} layers, median of ${ROUNDS} rounds: ${secs(pullS)} s (cache filled at ${secs(filledS)} s) vs ${secs(skopeoS)} s (ratios ${ratios})`,
    };
  } finally {
    await nc.close();
    await registry.stop();
    await nats.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
