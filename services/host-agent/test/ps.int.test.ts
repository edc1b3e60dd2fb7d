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
  it("lists a machine's processes as it sees them: its init as pid 1, its cwd, memory and listening sockets, nothing of the host", async () => {
    const lines: string[] = [];
    driver.onLog((_id, entry) => lines.push(entry.line));
    await driver.start(runSpec("m1", sh(`sleep 1000 & ${LISTENER}`), { cwd: "/tmp" }));
    const port = await waitFor("the listener's port", () => lines.find((l) => /^\d+$/.test(l)));
    const procs = await waitFor("the init and both processes", async () => {
      const ps = await driver.ps("m1");
      return ps.length === 3 && ps.some((p) => p.listen_sockets.length > 0) ? ps : undefined;
    });
    // The wrapper and crun run on the host's side of the pid namespace: they are not the machine's.
    expect(procs.map((p) => p.pid)).toEqual([1, 2, 3]);
    expect(procs[0]?.command).toMatch(/^\/run\/hangar-init -- \/bin\/sh -c sleep 1000/);
    const perl = procs.find((p) => p.command.startsWith("perl"));
    expect(perl).toMatchObject({
      directory: "/tmp",
      listen_sockets: [{ proto: "tcp", address: `127.0.0.1:${port}` }],
    });
    expect(perl?.rss).toBeGreaterThan(0);
    expect(perl?.rtime).toBeGreaterThan(0);
    expect(procs.find((p) => p.command === "sleep 1000")).toMatchObject({ listen_sockets: [] });
  });

  it("refuses a machine that does not run", async () => {
    await expect(driver.ps("nope")).rejects.toBeInstanceOf(MachineNotRunningError);
  });
});
