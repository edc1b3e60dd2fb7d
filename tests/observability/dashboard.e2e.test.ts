// Acceptance 5 on its own platform (tests/observability/dashboard.ts has the check). The scheduler
// decides on short windows so the autoscaler's decision comes within the check's wait.
// HANGAR_SCREENSHOTS_DIR=docs/images saves the screenshots docs/dashboard.md shows.
import { afterAll, beforeAll, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { checkDashboard } from "./dashboard.js";

let p: TestPlatform;

beforeAll(async () => {
  p = await startTestPlatform({
    env: { scheduler: { HANGAR_SCHEDULER_PANIC_WINDOW_S: "2", HANGAR_SCHEDULER_STABLE_WINDOW_S: "6" } },
  });
}, 240_000);

afterAll(async () => {
  await p?.close();
});

it("the dashboard in Chromium: login, a live machine, an autoscaler decision; a wrong token refused", async () => {
  await checkDashboard(p, { screenshotsDir: process.env.HANGAR_SCREENSHOTS_DIR });
}, 300_000);
