// Issue 14's acceptance 1, on the whole platform: the issue's Dockerfile (tests/images/corpus/
// express-issue: node:20-slim stages, `RUN npm ci`, `addgroup`/`adduser`, `USER app`) with a real
// Express app is deployed with `hangar deploy`. Its dependencies come from the npm registry inside
// the RUN step (the context has no node_modules; the deploy's build output shows npm adding them),
// and the app answers through the proxy as user `app`, not root.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { viaProxy } from "../platform/harness.js";
import { type DeployPlatform, startDeployPlatform } from "./corpus-deploy.js";

const DEPLOY_TIMEOUT_MS = 300_000;
const APP = "express-issue";
let p: DeployPlatform;

beforeAll(async () => {
  p = await startDeployPlatform();
}, 120_000);

afterAll(() => p?.close());

describe("issue 14's Dockerfile with an Express app", () => {
  it(
    "deploys with hangar deploy: npm ci fetches from the registry in RUN, and the app answers as user app",
    async () => {
      const deploy = await p.deploy("express-issue", APP, DEPLOY_TIMEOUT_MS);
      const output = deploy.stdout + deploy.stderr;
      expect(deploy.code, output).toBe(0);
      expect(output, "npm ci's own report of the packages it fetched").toMatch(/added \d+ packages/);

      const res = await viaProxy(p.platform, APP);
      expect(res.status, res.body).toBe(200);
      const answer = JSON.parse(res.body) as { app: string; express: string; uid: number; user: string };
      expect(answer.app).toBe(APP);
      expect(answer.express).toMatch(/^4\./);
      expect(answer.user).toBe("app");
      expect(answer.uid).toBeGreaterThan(0);
    },
    DEPLOY_TIMEOUT_MS,
  );
});
