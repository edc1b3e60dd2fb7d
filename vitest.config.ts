import { defineConfig } from "vitest/config";

// Test layers by file name, each a vitest project; HANGAR_TEST_LAYER (set by
// `pnpm test:unit|test:int|test:e2e`) runs one, and file filters given after it narrow that layer.
// Unset, every layer runs (`npm test`): unit first, then int, then e2e.
const LAYERS: Record<string, { include: string[]; exclude: string[] }> = {
  unit: { include: ["**/*.test.ts"], exclude: ["**/*.int.test.ts", "**/*.e2e.test.ts"] },
  int: { include: ["**/*.int.test.ts"], exclude: [] },
  e2e: { include: ["**/*.e2e.test.ts"], exclude: [] },
};
const layerName = process.env.HANGAR_TEST_LAYER;
if (layerName && LAYERS[layerName] === undefined) {
  throw new Error(`HANGAR_TEST_LAYER=${layerName}: not one of ${Object.keys(LAYERS).join(", ")}`);
}
const roots = "{libs,services,tests,cli}/";
const conditions = ["source"];
// @hangar/proto is plain JavaScript (1.2 MB of protobufjs static code, proto/gen): Node loads it
// natively, as it does node_modules, instead of vite transforming it and every test file's
// process evaluating it through vitest's module runner (seconds per int/e2e file).
const external = [/\/proto\/(index|numbers)\.js$/, /\/proto\/gen\//];

// One run starts one nats-server and one Postgres (libs/testkit/src/global-setup.ts, the root
// project's: the layers' projects leave it out, or each would start its own) and hands their
// addresses to every test file through `inject`. Tests that kill or restart a server start their own.
//
// Unit files run without isolation (isolate: false): a worker (one on a 2-core machine) loads each
// module of the workspace once for all the files it runs, not once per file, which was most of
// their time. They restore what
// they change of the process (vi.unstubAllEnvs, saved process.env) and mock no modules; a unit file
// that needs a process of its own belongs in the int layer. Int and e2e files keep a fresh process
// each: they start services whose module state (caches, handles) must not reach the next file.
// Int and e2e files run two at a time (HANGAR_TEST_WORKERS sets both; 1 runs every
// file one by one). Each starts its own servers on free ports, in temp folders and in network
// namespaces of its own (buckets and streams on the run's shared nats-server carry the file's own
// prefix). Int files spend much of their time waiting on what they start: two at a time used 1.25
// of 2 cores (600 CPU-s in 480 s, 2026-12-07). Three at a time used 1.7 and took 322-353 s, but
// two runs of three failed: a test registry that never answered, restore.int's backup and a
// suspend.int test (causes not found), none of them seen two at a time.
//
// E2e files, each a whole platform, run two at a time, but for the ones below, which run alone
// after the others of their layer. Six light e2e files took 90 s two at a time against 117 s one at
// a time (1.33 cores used, 27 % idle); the whole layer two at a time took 1,331 s against 1,463 s,
// but the heavy files beside another took twice as long or more, and the Postgres cluster's failover
// and import tests failed (2026-12-07). Alone:
// - the heavy ones, 37 s or more alone: builds (the image corpus, deploys), a Postgres cluster,
//   steady load (autoscale, release strategies, scale, secret rolls), volumes, npm start, and a
//   browser beside Prometheus;
// - the two that build `pnpm images` into this host's one container storage;
// - the replica faults, which time a failover against a bound on three NATS nodes of their own.
// Folders end in "/": their files of the layer.
const SOLO = [
  "tests/postgres/cluster.e2e.test.ts",
  "tests/images/corpus.e2e.test.ts",
  "tests/platform/autoscale.e2e.test.ts",
  "tests/platform/release-strategies.e2e.test.ts",
  "tests/platform/deploy.e2e.test.ts",
  "tests/volumes/volumes.e2e.test.ts",
  "tests/observability/observability.e2e.test.ts",
  "tests/security/secrets-roll.e2e.test.ts",
  "tests/platform/start.e2e.test.ts",
  "tests/platform/scale.e2e.test.ts",
  "tests/images/service-images.e2e.test.ts",
  "tests/deploy/podman.e2e.test.ts",
  "tests/replicas/",
];
/** The solo files of a layer, as globs, given the layer's own glob (e.g. `**\/*.e2e.test.ts`). */
const soloGlobs = (layerGlob: string): string[] =>
  SOLO.flatMap((entry) =>
    entry.endsWith("/") ? [entry + layerGlob] : entry.endsWith(layerGlob.slice("**/*".length)) ? [entry] : [],
  );
const workersSet = process.env.HANGAR_TEST_WORKERS;
/** How many int or e2e files run at once (the solo ones aside). */
const workers = workersSet === undefined ? 2 : Number(workersSet);
if (!Number.isInteger(workers) || workers < 1) {
  throw new Error(`HANGAR_TEST_WORKERS=${workersSet}: not a whole number of at least 1`);
}

interface Project {
  name: string;
  include: string[];
  exclude: string[];
  maxWorkers: number;
  isolate: boolean;
}

const projects: Project[] = Object.entries(LAYERS)
  .filter(([name]) => !layerName || name === layerName)
  .flatMap(([name, layer]): Project[] => {
    const include = layer.include.map((glob) => roots + glob);
    if (name === "unit") return [{ name, include, exclude: layer.exclude, maxWorkers: 1, isolate: false }];
    const solo = layer.include.flatMap(soloGlobs);
    return [
      { name, include, exclude: [...layer.exclude, ...solo], maxWorkers: workers, isolate: true },
      { name: `${name}-solo`, include: solo, exclude: layer.exclude, maxWorkers: 1, isolate: true },
    ];
  });

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    globalSetup: ["libs/testkit/src/global-setup.ts"],
    projects: projects.map((project, groupOrder) => ({
      resolve: { conditions },
      ssr: { resolve: { conditions } },
      test: {
        name: project.name,
        include: project.include,
        exclude: ["**/node_modules/**", "**/dist/**", ...project.exclude],
        testTimeout: 60_000,
        hookTimeout: 60_000,
        pool: "forks" as const,
        // isolated-vm (the edge runtime, libs/edge) needs it on Node 20+: libs/edge/src/node-flags.ts.
        execArgv: ["--no-node-snapshot"],
        server: { deps: { external } },
        isolate: project.isolate,
        maxWorkers: project.maxWorkers,
        // Projects run one after another, unit first: its files give the quickest verdict.
        sequence: { groupOrder },
      },
    })),
  },
});
