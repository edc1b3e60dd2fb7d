// What the sandbox's hardening costs a machine's start (part of `pnpm bench machines`):
// - hardened_start_p50_ms / _p99_ms: ProcessDriver.start of an examples/hello machine (a dir: image)
//   until its init has forked the app, with the hardening every machine gets: a user namespace in
//   its org's id range, podman's capabilities, the containers-common seccomp filter, no_new_privs,
//   masked paths.
// - plain_start_p50_ms / _p99_ms: the same start without the hardening (no user namespace, every
//   capability, no seccomp), crun, catatonit, cgroups and the root filesystem otherwise alike.
// Both drivers run in this process on their own state folders; starts alternate between them
// (hardened, plain, hardened, ...), each machine stopped (SIGKILL) before the next start, after
// WARMUP unmeasured starts each. Target: hardened p99 - plain p99 < 20 ms.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessDriver } from "../../services/host-agent/src/driver/mod.js";
import { helloDir } from "../platform/harness.js";
import { percentile, round } from "./stats.js";

const STARTS = 100;
const WARMUP = 5;

function spec(machineId: string) {
  return {
    machineId,
    app: "bench-sandbox",
    org: "bench",
    region: "local",
    imageRef: `dir:${helloDir}`,
    instanceId: `v-${machineId}`,
    cmd: ["node", "server.js"],
    cwd: helloDir,
    env: {},
  };
}

/** Starts, measures and kills one machine of `driver`; the start's duration in ms. */
async function timedStart(driver: ProcessDriver, machineId: string): Promise<number> {
  const t0 = performance.now();
  await driver.start(spec(machineId));
  const ms = performance.now() - t0;
  await driver.stop(machineId, { signal: "SIGKILL", timeoutMs: 5_000 });
  return ms;
}

/** Runs the comparison; the figures for the JSON line and rows for the table. */
export async function sandboxStartRound(): Promise<{
  result: Record<string, number>;
  rows: [string, string | number, string][];
}> {
  const dirs = await Promise.all([0, 1].map(() => mkdtemp(join(tmpdir(), "bench-sandbox-"))));
  const hardened = new ProcessDriver({ stateDir: dirs[0] as string });
  const plain = new ProcessDriver({ stateDir: dirs[1] as string, hardening: false });
  try {
    const times = { hardened: [] as number[], plain: [] as number[] };
    for (let i = 0; i < WARMUP + STARTS; i++) {
      const h = await timedStart(hardened, `h${i % 4}`);
      const p = await timedStart(plain, `p${i % 4}`);
      if (i >= WARMUP) {
        times.hardened.push(h);
        times.plain.push(p);
      }
    }
    const result = {
      hardened_start_p50_ms: round(percentile(times.hardened, 50), 1),
      hardened_start_p99_ms: round(percentile(times.hardened, 99), 1),
      plain_start_p50_ms: round(percentile(times.plain, 50), 1),
      plain_start_p99_ms: round(percentile(times.plain, 99), 1),
    };
    return {
      result,
      rows: [
        [
          "sandbox start hardened",
          `${result.hardened_start_p50_ms} / ${result.hardened_start_p99_ms}`,
          `ms p50 / p99, ${STARTS} starts of a dir: machine until its init forked the app`,
        ],
        [
          "sandbox start plain",
          `${result.plain_start_p50_ms} / ${result.plain_start_p99_ms}`,
          "ms p50 / p99, the same without user namespace, seccomp or dropped capabilities",
        ],
        [
          "  hardening adds",
          round(result.hardened_start_p99_ms - result.plain_start_p99_ms, 1),
          "ms at p99 (target < 20)",
        ],
      ],
    };
  } finally {
    for (const [driver, n] of [
      [hardened, "h"],
      [plain, "p"],
    ] as const) {
      for (let i = 0; i < 4; i++) await driver.destroy(`${n}${i}`).catch(() => {});
      await driver.close();
    }
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }
}
