// Issue 17's whole-platform checks on ONE platform (a platform start is most of each check's time,
// and CI has a budget): every service exports its spans and metrics to an in-process OTLP receiver
// started first, and the scheduler decides on short windows so the dashboard's autoscaler decision
// comes within its wait. Each check uses apps of its own and assumes nothing of the others.
// - webhooks: a webhook made with the CLI gets an app's creation, signed, on its retry (webhooks.ts);
// - acceptance 3: a deploy is one trace across the CLI, gateway, builder, placement, host agent (deploy-trace.ts);
// - acceptance 4: every PromQL query of the generated dashboards answers for the served app (prometheus.ts);
// - acceptance 5: the web dashboard in Chromium (dashboard.ts); HANGAR_SCREENSHOTS_DIR=docs/images
//   saves the screenshots docs/dashboard.md shows.
import { afterAll, beforeAll, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { checkDashboard } from "./dashboard.js";
import { checkDeployTrace } from "./deploy-trace.js";
import { type OtlpReceiver, startOtlpReceiver } from "./otlp-receiver.js";
import { checkDashboardQueries } from "./prometheus.js";
import { checkWebhooks } from "./webhooks.js";

let otlp: OtlpReceiver;
let p: TestPlatform;

beforeAll(async () => {
  otlp = await startOtlpReceiver();
  p = await startTestPlatform({
    allEnv: otlp.env(),
    env: { scheduler: { HANGAR_SCHEDULER_PANIC_WINDOW_S: "2", HANGAR_SCHEDULER_STABLE_WINDOW_S: "6" } },
  });
}, 300_000);

afterAll(async () => {
  await p?.close();
  await otlp?.close();
});

it("webhooks: a webhook made with the CLI gets an app's creation, signed, on its retry after a failure", async () => {
  await checkWebhooks(p);
}, 180_000);

it("acceptance 3: a deploy is one trace: the CLI, the gateway, the builder's steps, placement, the host agent's start and checks", async () => {
  await checkDeployTrace(p, otlp);
}, 300_000);

it("acceptance 4: every PromQL query of the generated dashboards returns series for the app the platform serves", async () => {
  await checkDashboardQueries(p);
}, 420_000);

it("acceptance 5: the dashboard in Chromium: login, a live machine, an autoscaler decision; a wrong token refused", async () => {
  await checkDashboard(p, { screenshotsDir: process.env.HANGAR_SCREENSHOTS_DIR });
}, 300_000);
