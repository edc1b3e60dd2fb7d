// Issue 14's acceptance 1, on the whole platform: the issue's Dockerfile (tests/images/corpus/
// express-issue: node:20-slim stages, `RUN npm ci`, `addgroup`/`adduser`, `USER app`) with a real
// Express app is deployed with `hangar deploy`. Its dependencies come from the npm registry inside
// the RUN step (the deploy's build output shows npm adding them; nothing is in the context), and
// the app answers through the proxy as user `app`, not root.
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform, viaProxy } from "../platform/harness.js";
import { CORPUS_DIR } from "./compare.js";

const DEPLOY_TIMEOUT_MS = 300_000;
const APP = "express-issue";
let p: TestPlatform;
let work: string;

beforeAll(async () => {
  p = await startTestPlatform();
  work = mkdtempSync(join(tmpdir(), "hangar-express-"));
  writeFileSync(
    join(p.home, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
}, 120_000);

afterAll(async () => {
  await p?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

function hangar(args: string[], cwd: string, timeoutMs = DEPLOY_TIMEOUT_MS) {
  return runHangar(args, { cwd, env: { HANGAR_HOME: p.home }, timeoutMs });
}

describe("issue 14's Dockerfile with an Express app", () => {
  it(
    "deploys with hangar deploy: npm ci fetches from the registry in RUN, and the app answers as user app",
    async () => {
      const dir = join(work, APP);
      cpSync(join(CORPUS_DIR, APP), dir, { recursive: true });
      expect(existsSync(join(dir, "node_modules")), "the context carries no dependencies").toBe(false);
      const launch = await hangar(["launch", "--name", APP, "--yes"], dir, 60_000);
      expect(launch.code, launch.stderr + launch.stdout).toBe(0);

      const deploy = await hangar(["deploy"], dir);
      const output = deploy.stdout + deploy.stderr;
      expect(deploy.code, output).toBe(0);
      expect(output, "npm ci's own report of the packages it fetched").toMatch(/added \d+ packages/);

      const res = await viaProxy(p, APP);
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
