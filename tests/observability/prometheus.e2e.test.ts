// Acceptance 4 on its own platform (tests/observability/prometheus.ts has the check): a real
// Prometheus scrapes the platform while it serves one app, and every dashboard query answers for it.
import { afterAll, beforeAll, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { checkDashboardQueries } from "./prometheus.js";

let p: TestPlatform;

beforeAll(async () => {
  p = await startTestPlatform();
}, 240_000);

afterAll(async () => {
  await p?.close();
});

it("every PromQL query of the generated dashboards returns series for the app the platform serves", async () => {
  await checkDashboardQueries(p);
}, 600_000);
