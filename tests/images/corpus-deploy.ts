// Deploys a corpus entry on the test platform the way a user would: a copy of its folder,
// `hangar launch --name <app> --yes`, then `hangar deploy` (the CLI finds the platform through
// $HANGAR_HOME/local.json, as after `npm start`).
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CliResult, runHangar } from "../../cli/test/run-cli.js";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { CORPUS_DIR } from "./compare.js";

/** A test platform with a scratch folder for the apps it deploys. */
export interface DeployPlatform {
  platform: TestPlatform;
  /** Copies `entry`, launches it as `app` and deploys it; returns the deploy's output and exit. */
  deploy(entry: string, app: string, timeoutMs: number): Promise<CliResult>;
  close(): Promise<void>;
}

/** Starts the whole platform for deploying corpus entries. */
export async function startDeployPlatform(): Promise<DeployPlatform> {
  const platform = await startTestPlatform();
  const work = mkdtempSync(join(tmpdir(), "hangar-corpus-deploy-"));
  writeFileSync(
    join(platform.home, "local.json"),
    JSON.stringify({
      api_url: platform.apiUrl,
      proxy_url: platform.proxyUrl,
      nats_url: platform.nats.url,
      token: platform.token,
    }),
  );
  const hangar = (args: string[], cwd: string, timeoutMs: number) =>
    runHangar(args, { cwd, env: { HANGAR_HOME: platform.home }, timeoutMs });
  return {
    platform,
    async deploy(entry, app, timeoutMs) {
      const dir = join(work, app);
      cpSync(join(CORPUS_DIR, entry), dir, { recursive: true });
      if (existsSync(join(dir, "node_modules"))) throw new Error(`${entry} carries node_modules`);
      const launch = await hangar(["launch", "--name", app, "--yes", "--no-deploy"], dir, 60_000);
      if (launch.code !== 0) return launch;
      return hangar(["deploy"], dir, timeoutMs);
    },
    async close() {
      await platform.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
