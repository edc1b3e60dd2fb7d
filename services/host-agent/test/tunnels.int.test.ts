import { once } from "node:events";
import { connect as tcpConnect } from "node:net";
import { ExecFrameDecoder, ExecFrameKind, parseExecEnd } from "@hangar/config";
import {
  CommandError,
  type ExecTarget,
  type HostTunnelReply,
  type HostTunnelRequest,
  sendCommand,
} from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ProcessDriver } from "../src/driver/mod.js";
import { MachineTunnels } from "../src/tunnel/machine-tunnels.js";
import { nodeScript, removeStateDir, runSpec, tempStateDir } from "./harness.js";
import { waitFor } from "./wait.js";

// The host agent's console tunnels over a real nats-server, with the real driver: a ticket from
// cmd.host.<id>.tunnel opens one exec inside the machine's crun sandbox (stdin in, framed output and
// exit status out); anything else closes the connection. Port tunnels do not come here: the gateway
// connects to the machine's port itself.

let stateDir: string;
let driver: ProcessDriver;
let nc: NatsConnection;
let tunnels: MachineTunnels;
// A host id of its own: other test files share the run's nats-server.
const hostId = `tunnels-${process.pid}`;
// m1 runs; m2 is a machine of this host that is not running.
const apps = new Map([
  ["m1", "app1"],
  ["m2", "app1"],
]);
const ECHO = nodeScript(`
require("node:net").createServer((s) => s.pipe(s)).listen(Number(process.env.PORT), "0.0.0.0");
`);

beforeAll(async () => {
  stateDir = await tempStateDir();
  driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
  nc = await connect({ servers: inject("natsUrl") });
  tunnels = await MachineTunnels.open({
    nc,
    hostId,
    address: "127.0.0.1",
    port: 0,
    driver,
    appOf: (id) => apps.get(id),
    logger: createLogger("test", { level: "silent" }),
  });
  await nc.flush();
  await driver.start(runSpec("m1", ECHO));
});

afterAll(async () => {
  await tunnels?.close();
  await nc?.close();
  for (const m of driver?.running() ?? []) await driver.destroy(m.machineId);
  await driver?.close();
  if (stateDir) await removeStateDir(stateDir);
});

const ask = (target: ExecTarget, machineId = "m1", app = "app1") =>
  sendCommand<HostTunnelRequest, HostTunnelReply>(nc, `cmd.host.${hostId}.tunnel`, {
    app,
    machine_id: machineId,
    target,
  });

/** Connects with `ticket`, sends `input` (then ends it), and resolves to every byte that came back. */
async function through(reply: HostTunnelReply, ticket: string, input: string): Promise<Buffer> {
  const socket = tcpConnect({ host: reply.address, port: reply.port });
  await once(socket, "connect");
  const chunks: Buffer[] = [];
  socket.on("data", (d: Buffer) => chunks.push(d));
  socket.on("error", () => undefined);
  socket.end(`${ticket}\n${input}`);
  await once(socket, "close");
  return Buffer.concat(chunks);
}

/** Runs an exec tunnel to its end: its stdout, stderr and end frame. */
async function execThrough(target: ExecTarget, input: string) {
  const reply = await ask(target);
  const decoder = new ExecFrameDecoder();
  const out = { stdout: "", stderr: "", end: undefined as unknown };
  for (const { kind, payload } of decoder.push(await through(reply, reply.ticket, input))) {
    if (kind === ExecFrameKind.stdout) out.stdout += payload.toString();
    else if (kind === ExecFrameKind.stderr) out.stderr += payload.toString();
    else out.end = parseExecEnd(payload);
  }
  return out;
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => "answered",
    (err: unknown) => (err instanceof CommandError ? err.code : String(err)),
  );

/** A command that echoes its input back, without a terminal. */
const CAT: ExecTarget = { kind: "exec", command: ["cat"], tty: false, cols: 80, rows: 24 };

/** The stdout frames in what came back through an exec tunnel. */
function stdoutOf(bytes: Buffer): string {
  let out = "";
  for (const { kind, payload } of new ExecFrameDecoder().push(bytes))
    if (kind === ExecFrameKind.stdout) out += payload.toString();
  return out;
}

describe("tickets", () => {
  it("open one exec each, once", async () => {
    const reply = await ask(CAT);
    expect(reply.address).toBe("127.0.0.1");
    expect(reply.port).toBe(tunnels.port);
    expect(stdoutOf(await through(reply, reply.ticket, "first use"))).toBe("first use");
    // Spent: the same ticket again gets the connection closed, nothing run in the machine.
    expect((await through(reply, reply.ticket, "again")).length).toBe(0);
  });

  it("close a connection that brings an unknown ticket or none", async () => {
    const reply = await ask(CAT);
    expect((await through(reply, "not-a-ticket", "x")).length).toBe(0);
    expect((await through(reply, "", "x")).length).toBe(0);
  });
});

describe("cmd.host.<id>.tunnel", () => {
  it("refuses another app's machine, a machine that does not run, and a bad target", async () => {
    expect(await refusal(ask(CAT, "m1", "app2"))).toBe("not_found");
    expect(await refusal(ask(CAT, "m9"))).toBe("not_found");
    expect(await refusal(ask(CAT, "m2"))).toBe("failed_precondition");
    // A port is no target here: the gateway connects to machines' ports itself.
    expect(await refusal(ask({ kind: "port", port: 80 } as unknown as ExecTarget))).toBe("invalid_argument");
    expect(await refusal(ask({ kind: "exec", command: [], tty: false, cols: 80, rows: 24 }))).toBe(
      "invalid_argument",
    );
    expect(await refusal(ask({ kind: "exec", command: ["sh"], tty: true, cols: 0, rows: 24 }))).toBe(
      "invalid_argument",
    );
  });
});

describe("exec tunnels", () => {
  it("run the command in the machine: stdin in, stdout and stderr apart, the exit status last", async () => {
    const out = await execThrough(
      {
        kind: "exec",
        command: ["/bin/sh", "-c", "cat; echo err >&2; exit 5"],
        tty: false,
        cols: 80,
        rows: 24,
      },
      "from stdin",
    );
    expect(out).toEqual({ stdout: "from stdin", stderr: "err\n", end: { exit_code: 5, exit_signal: 0 } });
  });

  it("give the command a terminal of its own, of the size asked for", async () => {
    const out = await execThrough(
      {
        kind: "exec",
        command: ["/bin/sh", "-c", "test -t 0 && stty size && tty"],
        tty: true,
        cols: 123,
        rows: 45,
      },
      "",
    );
    // A terminal's output: lines end in CR LF. Its own: the container's devpts.
    expect(out.stdout).toMatch(/^45 123\r\n\/dev\/pts\/\d+\r\n$/);
    expect(out.end).toEqual({ exit_code: 0, exit_signal: 0 });
  });

  it("end a terminal's input with Ctrl-D when the client ends its own", async () => {
    const reply = await ask({
      kind: "exec",
      command: ["/bin/sh", "-c", "echo ready; cat"],
      tty: true,
      cols: 80,
      rows: 24,
    });
    const socket = tcpConnect({ host: reply.address, port: reply.port });
    await once(socket, "connect");
    socket.write(`${reply.ticket}\n`);
    const decoder = new ExecFrameDecoder();
    let stdout = "";
    let end: unknown;
    socket.on("data", (chunk: Buffer) => {
      for (const { kind, payload } of decoder.push(chunk)) {
        if (kind === ExecFrameKind.stdout) stdout += payload.toString();
        if (kind === ExecFrameKind.end) end = parseExecEnd(payload);
      }
    });
    // Typed once the terminal is up, as a user would: then the end of input reaches cat as Ctrl-D.
    await waitFor("the terminal", () => (stdout.includes("ready") ? true : undefined));
    socket.end("typed line\n");
    await once(socket, "close");
    // The terminal echoes the line, then cat prints it; the Ctrl-D ends cat.
    expect(stdout).toBe("ready\r\ntyped line\r\ntyped line\r\n");
    expect(end).toEqual({ exit_code: 0, exit_signal: 0 });
  });
});
