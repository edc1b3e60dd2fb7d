// Issue 14's acceptance 2: the Next.js app made by create-next-app, with the Dockerfile Fly's
// generator writes (tests/images/corpus/fly-nextjs: ARG NODE_VERSION before FROM, LABEL, apt-get
// install build-essential, npm ci --include=dev, npm run build, npm prune --omit=dev, a final stage
// copying the build), deployed with `hangar deploy`, serves its page through the proxy.
// It installs Next.js and compiles the app, minutes on a 2-core machine: it runs when
// HANGAR_NEXTJS_E2E=1 (`HANGAR_NEXTJS_E2E=1 pnpm vitest run tests/images/nextjs.e2e.test.ts`), and
// `pnpm bench build` builds the same Dockerfile with Hangar and buildah and compares them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { viaProxy } from "../platform/harness.js";
import { type DeployPlatform, startDeployPlatform } from "./corpus-deploy.js";

const DEPLOY_TIMEOUT_MS = 900_000;
const APP = "nextjs-app";
const enabled = process.env.HANGAR_NEXTJS_E2E === "1";
let p: DeployPlatform | undefined;

describe.runIf(enabled)("a create-next-app app with fly launch's Dockerfile", () => {
  beforeAll(async () => {
    p = await startDeployPlatform();
  }, 120_000);

  afterAll(() => p?.close());

  it(
    "builds (npm ci, next build, npm prune) and serves the page through the proxy",
    async () => {
      const platform = p as DeployPlatform;
      const deploy = await platform.deploy("fly-nextjs", APP, DEPLOY_TIMEOUT_MS);
      expect(deploy.code, deploy.stdout + deploy.stderr).toBe(0);
      const res = await viaProxy(platform.platform, APP);
      expect(res.status, res.body.slice(0, 2000)).toBe(200);
      expect(res.body).toContain("<html");
      expect(res.body).toMatch(/_next\/static/);
    },
    DEPLOY_TIMEOUT_MS,
  );
});
