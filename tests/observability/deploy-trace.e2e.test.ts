// Acceptance 3 on its own platform (tests/observability/deploy-trace.ts has the check): every service
// exports to an OTLP receiver in this test, started before the platform.
import { afterAll, beforeAll, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { checkDeployTrace } from "./deploy-trace.js";
import { type OtlpReceiver, startOtlpReceiver } from "./otlp-receiver.js";

let otlp: OtlpReceiver;
let p: TestPlatform;

beforeAll(async () => {
  otlp = await startOtlpReceiver();
  p = await startTestPlatform({ allEnv: otlp.env() });
}, 240_000);

afterAll(async () => {
  await p?.close();
  await otlp?.close();
});

it("a deploy is one trace: the CLI, the gateway, the builder's steps, placement, the host agent's start and checks", async () => {
  await checkDeployTrace(p, otlp);
}, 300_000);
