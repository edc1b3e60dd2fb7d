// Webhooks on a whole platform (tests/observability/webhooks.ts has the check): the CLI, the gateway,
// the webhooks service's own process and NATS user, the event feed and a real receiver.
import { afterAll, beforeAll, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { checkWebhooks } from "./webhooks.js";

let p: TestPlatform;

beforeAll(async () => {
  p = await startTestPlatform();
}, 300_000);

afterAll(async () => {
  await p?.close();
});

it("a webhook made with the CLI gets an app's creation, signed, on its retry after a failure", async () => {
  await checkWebhooks(p);
}, 180_000);
