// `npm start` (scripts/start.ts) as a child process of an end-to-end test, in the test's own
// HANGAR_HOME on free ports, with everything it prints kept.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, type TopologyHost } from "@hangar/testkit";
import { repoRoot } from "../../scripts/platform.js";

/**
 * The environment of an npm start in `home` with every port it opens free, its host agent on
 * topology host `host` (npm start passes the HANGAR_HOST_AGENT_* settings through to it).
 */
export async function npmStartEnv(home: string, host: TopologyHost): Promise<Record<string, string>> {
  return {
    ...host.env,
    HANGAR_HOME: home,
    HANGAR_NATS_PORT: String(await freePort()),
    HANGAR_PG_PORT: String(await freePort()),
    HANGAR_PG_DATA: join(home, "postgres"),
    HANGAR_GATEWAY_PORT: String(await freePort()),
    HANGAR_PROXY_PORT: String(await freePort()),
    HANGAR_MONITOR_OPS_PORT: String(await freePort()),
  };
}

/** One run of scripts/start.ts. */
export class NpmStart {
  /** stdout and stderr so far. */
  output = "";
  readonly child: ChildProcess;
  private readonly ended: Promise<number | null>;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "scripts/start.ts"], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (d: Buffer) => {
      this.output += d;
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.ended = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  /** Resolves once it says it is running; fails with its output if it exits first or takes over `timeoutMs`. */
  async running(timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes("running;")) {
      if (this.child.exitCode !== null) throw new Error(`npm start exited early:\n${this.output}`);
      if (Date.now() > deadline)
        throw new Error(`npm start not running after ${timeoutMs} ms:\n${this.output}`);
      await sleep(100);
    }
  }

  /** Its exit code, once it has exited. */
  exited(): Promise<number | null> {
    return this.ended;
  }

  /** SIGTERM, and its exit code once it has stopped everything. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill("SIGTERM");
    return this.ended;
  }
}
