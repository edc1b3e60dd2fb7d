import { defineConfig } from "vitest/config";

// One run starts one nats-server and one Postgres (libs/testkit/src/global-setup.ts) and hands
// their addresses to every test file through `inject`. Tests that kill or restart a server
// start their own.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["{libs,services,tests,cli}/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    globalSetup: ["libs/testkit/src/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
