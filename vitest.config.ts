import { defineConfig } from "vitest/config";

// Test layers by file name; HANGAR_TEST_LAYER (set by `pnpm test:unit|test:int|test:e2e`) runs one,
// and file filters given after it narrow that layer. Unset, every layer runs (`npm test`).
const LAYERS: Record<string, { include: string[]; exclude: string[] }> = {
  unit: { include: ["**/*.test.ts"], exclude: ["**/*.int.test.ts", "**/*.e2e.test.ts"] },
  int: { include: ["**/*.int.test.ts"], exclude: [] },
  e2e: { include: ["**/*.e2e.test.ts"], exclude: [] },
};
const layerName = process.env.HANGAR_TEST_LAYER;
const layer = layerName === undefined || layerName === "" ? undefined : LAYERS[layerName];
if (layerName && layer === undefined) {
  throw new Error(`HANGAR_TEST_LAYER=${layerName}: not one of ${Object.keys(LAYERS).join(", ")}`);
}
const roots = "{libs,services,tests,cli}/";

// One run starts one nats-server and one Postgres (libs/testkit/src/global-setup.ts) and hands
// their addresses to every test file through `inject`. Tests that kill or restart a server
// start their own.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: (layer?.include ?? ["**/*.test.ts"]).map((glob) => roots + glob),
    exclude: ["**/node_modules/**", "**/dist/**", ...(layer?.exclude ?? [])],
    globalSetup: ["libs/testkit/src/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
