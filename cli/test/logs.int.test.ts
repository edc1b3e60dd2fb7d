import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { LogLine } from "../src/logs.js";
import { type RunningCli, startHangar } from "./run-cli.js";

let nc: NatsConnection;
const running: RunningCli[] = [];

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function log(machineId: string, line: string, stream: LogLine["stream"] = "stdout"): LogLine {
  return { ts: "2025-01-31T12:00:00.123Z", machine_id: machineId, region: "local", stream, line };
}

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
});

afterAll(async () => {
  for (const cli of running) if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
  await nc?.close();
});

describe("hangar logs", () => {
  it("prints the lines of the chosen machine as they arrive, until Ctrl-C", async () => {
    // A unique app name keeps other tests' log traffic out of this subscription.
    const app = `logs${process.pid}`;
    const cli = startHangar(["logs", "-a", app, "--machine", "m1"], {
      env: { HANGAR_HOME: "/nonexistent", HANGAR_NATS_URL: inject("natsUrl") },
    });
    running.push(cli);
    await until(() => cli.output().stderr.includes("Following the logs"), "the subscription");
    expect(cli.output().stderr).toBe(`Following the logs of logs.${app}.*.m1 (Ctrl-C to stop)\n`);

    // Published in this order on one connection, so m2's line would arrive before m1's if it were not filtered.
    nc.publish(`logs.${app}.local.m2`, JSON.stringify(log("m2", "not mine")));
    nc.publish(`logs.${app}.local.m1`, JSON.stringify(log("m1", "listening on :8080")));
    nc.publish(`logs.${app}.local.m1`, "raw text");
    nc.publish(`logs.${app}.local.m1`, JSON.stringify(log("m1", "oops", "stderr")));
    await nc.flush();
    await until(() => cli.output().stdout.includes("oops"), "the last line");
    expect(cli.output().stdout).toBe(
      [
        "2025-01-31T12:00:00.123Z m1 listening on :8080",
        "raw text",
        "2025-01-31T12:00:00.123Z m1 oops",
        "",
      ].join("\n"),
    );

    cli.child.kill("SIGINT");
    expect((await cli.exited).code).toBe(0);
  });
});
