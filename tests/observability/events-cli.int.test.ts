// `hangar events`, the real CLI as a process, against a real gateway process and nats-server (the
// platform's NATS users): a follower sees a machine's lifecycle as it is recorded, in order and once
// each; without --follow the CLI prints what happened and exits; --since starts after an id; --json
// lines are hangar.event.v1; bad arguments, an unknown type, an unknown app and another org's token
// end with a message and a non-zero exit. The lifecycle is appended to MACHINES as the gateway and a
// host agent record it (no machine runs): what is under test is the feed and the CLI.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "@hangar/auth";
import { type MachineEvent, machineAggregateId, machinesStream } from "@hangar/domain";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runHangar, startHangar } from "../../cli/test/run-cli.js";
import { type LoneGateway, startLoneGateway } from "../platform/lone-gateway.js";

interface Event {
  id: string;
  schema: string;
  type: string;
  app: string | null;
  org: string | null;
  subject: string;
}

const APP = "evcli";
const ORG = "evcliorg";
let g: LoneGateway;
let home: string;
let otherHome: string;

/** The CLI's home with a local.json for `token`. */
function cliHome(token: string): string {
  const dir = mkdtempSync(join(tmpdir(), "hangar-events-cli-"));
  writeFileSync(join(dir, "local.json"), JSON.stringify({ api_url: g.apiUrl, token }));
  return dir;
}

beforeAll(async () => {
  g = await startLoneGateway("events-cli");
  await g.post("/orgs", { slug: ORG });
  await g.post("/orgs", { slug: `${ORG}-other` });
  await g.post("/apps", { app_name: APP, org_slug: ORG });
  home = cliHome(g.token);
  otherHome = cliHome(mintToken(g.tokenKey, { id: "tok_evcli_other", kind: "org", org: `${ORG}-other` }));
}, 120_000);

afterAll(async () => {
  await g?.close();
  for (const dir of [home, otherHome]) if (dir) rmSync(dir, { recursive: true, force: true });
});

const lines = (stdout: string): Event[] =>
  stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Event);

async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One machine's lifecycle, appended one decision at a time. */
async function lifecycle(machineId: string): Promise<void> {
  const instanceId = `${machineId}-i1`;
  const decisions: MachineEvent[][] = [
    [
      {
        type: "MachineCreated",
        data: {
          machineId,
          app: APP,
          name: machineId,
          region: "local",
          instanceId,
          configJson: JSON.stringify({ image: "registry.local/hello:1" }),
          skipLaunch: false,
        },
      },
      { type: "MachineStartRequested", data: { instanceId } },
    ],
    [{ type: "MachineStarted", data: { hostId: "h1", pid: 42 } }],
    [{ type: "MachineStopRequested", data: { signal: "SIGINT", timeoutS: 5 } }],
    [{ type: "MachineExited", data: { exitCode: 0, signal: "SIGINT", requested: true } }],
  ];
  let n = 0;
  for (const events of decisions) {
    await g.store.append(machinesStream, machineAggregateId(APP, machineId), events, {
      commandId: `${machineId}-${++n}`,
      expectedSeq: "any",
    });
  }
}

const STEPS = [
  "machine.created",
  "machine.start_requested",
  "machine.started",
  "machine.stop_requested",
  "machine.exited",
];

it("follows a machine's lifecycle as it is recorded, then prints it again without --follow", async () => {
  const env = { HANGAR_HOME: home };
  // The feed's recent events include the app's creation: it shows the follower is connected.
  const follow = startHangar(["events", "-a", APP, "--follow", "--json"], { env, timeoutMs: 60_000 });
  await until("the follower prints the app's creation", () =>
    lines(follow.output().stdout).some((e) => e.type === "app.created"),
  );
  await lifecycle("m1");
  const subject = `${APP}.m1`;
  await until("the follower prints the machine's exit", () =>
    lines(follow.output().stdout).some((e) => e.subject === subject && e.type === "machine.exited"),
  );
  follow.child.kill("SIGINT");
  const followed = await follow.exited;
  expect(followed.code, followed.stderr).toBe(0);
  const seen = lines(followed.stdout).filter((e) => e.subject === subject);
  expect(seen.map((e) => e.type)).toEqual(STEPS);
  expect(seen.every((e) => e.schema === "hangar.event.v1" && e.app === APP && e.org === ORG)).toBe(true);
  const ids = seen.map((e) => e.id);
  // Two events of one decision: <seq>.0 and <seq>.1, then one id per message.
  expect(ids[0]?.endsWith(".0")).toBe(true);
  expect(ids[1]?.endsWith(".1")).toBe(true);

  // Without --follow: what happened, then the end; the same ids.
  const once = await runHangar(["events", "-a", APP, "--json", "--types", "machine.*"], { env });
  expect(once.code, once.stderr).toBe(0);
  expect(lines(once.stdout).map((e) => e.id)).toEqual(ids);
  // --since: only what came after.
  const since = await runHangar(["events", "-a", APP, "--json", "--since", ids[2] as string], { env });
  expect(since.code, since.stderr).toBe(0);
  expect(lines(since.stdout).map((e) => e.id)).toEqual(ids.slice(3));
  // For people: one line per event, time, app, type, subject, then its data.
  const human = await runHangar(["events", "-a", APP, "--types", "machine.started"], { env });
  expect(human.code, human.stderr).toBe(0);
  expect(human.stdout.trim().split("\n")).toEqual([
    expect.stringMatching(new RegExp(`^\\S+Z ${APP} machine\\.started ${APP}\\.m1 .*host_id=h1`)),
  ]);
  // The org's feed, from a folder with no hangar.toml and no -a: the app's events are in it.
  const org = await runHangar(["events", "-o", ORG, "--json"], { env });
  expect(org.code, org.stderr).toBe(0);
  expect(
    lines(org.stdout)
      .filter((e) => e.subject === subject)
      .map((e) => e.id),
  ).toEqual(ids);
}, 120_000);

it("refuses bad arguments, an unknown type or app, and another org's token, with a message and a non-zero exit", async () => {
  const env = { HANGAR_HOME: home };
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["events", "-a", APP, "--types", "nonsense"], env, /--types/],
    [["events", "-a", APP, "--since", "yesterday"], env, /--since/],
    [["events", "-a", APP, "--types", "machine.flew"], env, /machine\.flew/],
    [["events", "-a", `${APP}-missing`], env, /not found/],
    [["events", "-a", APP, "--follow"], { HANGAR_HOME: otherHome }, /not found/],
  ];
  for (const [args, caseEnv, message] of cases) {
    const run = await runHangar(args, { env: caseEnv });
    expect(run.code, args.join(" ")).not.toBe(0);
    expect(run.stderr, args.join(" ")).toMatch(message);
    expect(run.stdout, args.join(" ")).toBe("");
  }
}, 120_000);
