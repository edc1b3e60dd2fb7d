import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MachineNotRunningError, ProcessDriver } from "../src/driver/mod.js";
import { removeStateDir, runSpec, sh, tempStateDir } from "./harness.js";
import { waitFor } from "./wait.js";

let stateDir: string;
let driver: ProcessDriver;

beforeEach(async () => {
  stateDir = await tempStateDir();
  driver = new ProcessDriver({ stateDir, pollIntervalMs: 50 });
});

afterEach(async () => {
  for (const m of driver.running()) await driver.destroy(m.machineId);
  await driver.close();
  await removeStateDir(stateDir);
});

// A listener whose port the test learns from its output; the machine's processes all come from it.
const LISTENER = `exec perl -MIO::Socket::INET -e '
  my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 5) or die $!;
  print $s->sockport, "\\n"; STDOUT->flush; sleep 1000'`;

describe("ProcessDriver.ps", () => {
  it("lists a plain machine's process group without the wrapper, with its cwd, memory and listening sockets", async () => {
    const lines: string[] = [];
    driver.onLog((_id, entry) => lines.push(entry.line));
    const m = await driver.start(runSpec("m1", sh(`sleep 1000 & ${LISTENER}`), { cwd: "/tmp" }));
    const port = await waitFor("the listener's port", () => lines.find((l) => /^\d+$/.test(l)));
    const procs = await waitFor("both processes", async () => {
      const ps = await driver.ps("m1");
      return ps.length === 2 && ps.some((p) => p.listen_sockets.length > 0) ? ps : undefined;
    });
    expect(procs.map((p) => p.pid)).not.toContain(m.pid);
    const perl = procs.find((p) => p.command.startsWith("perl"));
    expect(perl).toMatchObject({
      directory: "/tmp",
      listen_sockets: [{ proto: "tcp", address: `127.0.0.1:${port}` }],
    });
    expect(perl?.rss).toBeGreaterThan(0);
    expect(procs.find((p) => p.command === "sleep 1000")).toMatchObject({ listen_sockets: [] });
    expect(procs.map((p) => p.pid)).toEqual([...procs.map((p) => p.pid)].sort((a, b) => a - b));
  });

  it("shows a machine with its own pid namespace as it sees itself: its init is pid 1, the host's processes are not there", async () => {
    // unshare stays on the host's side (it waits for its child); the machine is what runs as pid 1 inside.
    await driver.start(
      runSpec("m2", ["unshare", "--pid", "--fork", "/bin/sh", "-c", "sleep 1000 & exec sleep 999"]),
    );
    const procs = await waitFor("the machine's two processes", async () => {
      const ps = await driver.ps("m2");
      return ps.length === 2 ? ps : undefined;
    });
    expect(procs.map((p) => [p.pid, p.command])).toEqual([
      [1, "sleep 999"],
      [2, "sleep 1000"],
    ]);
  });

  it("refuses a machine that does not run", async () => {
    await expect(driver.ps("nope")).rejects.toBeInstanceOf(MachineNotRunningError);
  });
});
