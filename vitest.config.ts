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
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    globalSetup: ["libs/testkit/src/global-setup.ts"],
    projects: Object.entries(LAYERS)
      .filter(([name]) => !layerName || name === layerName)
      .map(([name, layer], groupOrder) => ({
        resolve: { conditions },
        ssr: { resolve: { conditions } },
        test: {
          name,
          include: layer.include.map((glob) => roots + glob),
          exclude: ["**/node_modules/**", "**/dist/**", ...layer.exclude],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: "forks" as const,
          server: { deps: { external } },
          isolate: name !== "unit",
          // Layers run one after another, unit first: its files give the quickest verdict.
          sequence: { groupOrder },
        },
      })),
  },
});
