import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNetworkTopology, type NetworkTopology } from "./mod.js";

const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const PORT = 7000;

/** A node program that answers `count` TCP connections on [address]:PORT with `reply`, then exits. */
function serve(address: string, reply: string, count: number): string[] {
  return [
    process.execPath,
    "-e",
    `let left = ${count};
     const server = require("node:net").createServer((socket) => {
       socket.end(${JSON.stringify(reply)});
       if (--left === 0) server.close();
     });
     server.listen(${PORT}, ${JSON.stringify(address)});`,
  ];
}

/** A node program that connects to [address]:PORT (retrying while the server comes up) and prints what it reads. */
function fetchFrom(address: string): string[] {
  return [
    process.execPath,
    "-e",
    `const attempt = (left) => {
       const socket = require("node:net").connect(${PORT}, ${JSON.stringify(address)});
       let text = "";
       socket.on("data", (chunk) => { text += chunk; });
       socket.on("end", () => process.stdout.write(text));
       socket.on("error", (error) => {
         if (left === 0) { console.error(error.message); process.exit(1); }
         setTimeout(() => attempt(left - 1), 50);
       });
     };
     attempt(100);`,
  ];
}

function rootState(): { sysctls: string; nft: string } {
  const read = (file: string) => readFileSync(file, "utf8");
  return {
    sysctls: [
      read("/proc/sys/net/ipv4/ip_forward"),
      read("/proc/sys/net/ipv6/conf/all/forwarding"),
      read("/proc/sys/net/ipv6/conf/default/forwarding"),
    ].join(""),
    // Builds running meanwhile in other test files each hold a table of their own here
    // (services/builder/src/network): not the topology's doing.
    // --stateless: without counters, which any traffic through the root namespace's chains moves
    // (podman's CNI chains, once podman ran on this machine, count every new loopback connection).
    nft: execFileSync("nft", ["--stateless", "list", "ruleset"], { encoding: "utf8" }).replace(
      /^table inet hangar_build_\w+ \{[\s\S]*?^\}\n/gm,
      "",
    ),
  };
}

function rootObjects(topology: NetworkTopology): string[] {
  const ip = (...args: string[]) => execFileSync("ip", args, { encoding: "utf8" });
  const netns = ip("netns", "list");
  const links = ip("-o", "link", "show");
  const routes = ip("route", "show");
  const names = [topology.internet.netns, ...topology.hosts.map((host) => host.netns)];
  return [
    ...names.filter((name) => netns.includes(name)),
    ...(links.match(/hgtopo\d+u\d+/g) ?? []).filter((link) =>
      names.some((name) => name.startsWith(`${link.replace(/u\d+$/, "")}-`)),
    ),
    ...topology.hosts.map((host) => host.machineCidr).filter((cidr) => routes.includes(cidr)),
  ];
}

describe("createNetworkTopology", () => {
  let topology: NetworkTopology;
  let before: ReturnType<typeof rootState>;
  beforeAll(async () => {
    before = rootState();
    topology = await createNetworkTopology({ hosts: 2 });
  });
  afterAll(async () => {
    await topology?.close();
  });

  it("describes each host with the settings its host agent takes", () => {
    const [h1, h2] = topology.hosts;
    expect(h1).toMatchObject({ name: "h1", underlayIp: "fd00:99::1" });
    expect(h2).toMatchObject({ name: "h2", underlayIp: "fd00:99::2" });
    expect(h1?.machineCidr).toMatch(/^10\.\d+\.16\.0\/20$/);
    expect(h1?.env).toEqual({
      HANGAR_HOST_AGENT_NETNS: h1?.netns,
      HANGAR_HOST_AGENT_UNDERLAY_IP: "fd00:99::1",
      HANGAR_HOST_AGENT_MACHINE_CIDR: h1?.machineCidr,
      HANGAR_HOST_AGENT_CONTROL_SOURCES: `${h1?.rootIp}/32`,
    });
    // The test's end of the uplink, whose packets to machines the host forwards.
    expect(h1?.rootIp.split(".").slice(0, 3)).toEqual(h1?.uplinkIp.split(".").slice(0, 3));
  });

  it("lets hosts reach each other over the underlay, IPv4 and IPv6", async () => {
    const [h1, h2] = topology.hosts as [NetworkTopology["hosts"][0], NetworkTopology["hosts"][0]];
    const server = topology.exec(h2.netns, serve("::", "h2\n", 2), { timeoutMs: 20_000 });
    const v4 = await topology.exec(h1.netns, fetchFrom("10.99.0.2"), { timeoutMs: 10_000 });
    const v6 = await topology.exec(h1.netns, fetchFrom("fd00:99::2"), { timeoutMs: 10_000 });
    expect(v4).toMatchObject({ code: 0, stdout: "h2\n" });
    expect(v6).toMatchObject({ code: 0, stdout: "h2\n" });
    expect((await server).code).toBe(0);
  });

  it("routes a host's machine CIDR from the test's namespace through its uplink", async () => {
    const h1 = topology.hosts[0];
    if (!h1) throw new Error("no host");
    const address = h1.machineCidr.replace(/\.0\/20$/, ".2");
    // A machine's stand-in: an address of the machine CIDR on the host namespace's lo (this kernel
    // has no dummy links).
    const added = await topology.exec(h1.netns, ["ip", "addr", "add", `${address}/32`, "dev", "lo"]);
    expect(added).toMatchObject({ code: 0, stderr: "" });
    const server = topology.exec(h1.netns, serve(address, "machine\n", 1), { timeoutMs: 20_000 });
    expect(await readFrom(address)).toBe("machine\n");
    expect((await server).code).toBe(0);
  });

  it("has an internet server that every host reaches through its default route", async () => {
    for (const host of topology.hosts) {
      const url = `http://${topology.internet.ip}:${topology.internet.port}/`;
      const result = await topology.exec(host.netns, ["curl", "-sS", "--max-time", "5", url]);
      expect(result).toMatchObject({ code: 0, stdout: "internet\n" });
    }
  });

  it("reports a failing command's exit code and stderr instead of throwing", async () => {
    const host = topology.hosts[0]?.netns ?? "";
    const result = await topology.exec(host, ["sh", "-c", "echo oops >&2; exit 3"]);
    expect(result).toEqual({ code: 3, stdout: "", stderr: "oops\n" });
    const slow = await topology.exec(host, ["sleep", "10"], { timeoutMs: 100 });
    expect(slow.code).toBe(137);
  });

  it("gives a second topology its own names and addresses", async () => {
    const other = await createNetworkTopology({ hosts: 1, internet: false });
    try {
      expect(other.hosts[0]?.netns).not.toBe(topology.hosts[0]?.netns);
      expect(other.hosts[0]?.machineCidr).not.toBe(topology.hosts[0]?.machineCidr);
      expect(other.hosts[0]?.uplinkIp).not.toBe(topology.hosts[0]?.uplinkIp);
    } finally {
      await other.close();
    }
    expect(rootObjects(other)).toEqual([]);
  });

  it("refuses a host count it cannot address", async () => {
    await expect(createNetworkTopology({ hosts: 0 })).rejects.toThrow(RangeError);
    await expect(createNetworkTopology({ hosts: 16 })).rejects.toThrow(/1 to 15 hosts/);
  });

  it("leaves nothing behind on close, and never touched the root namespace's forwarding or firewall", async () => {
    await topology.close();
    expect(rootObjects(topology)).toEqual([]);
    expect(rootState()).toEqual(before);
  });
});

describe("a topology's owner going away", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "hangar-topology-crash-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts a process that builds a one-host topology, marks its host with 10.255.255.1 on lo, and waits. */
  async function topologyOwner(): Promise<{ child: ChildProcess; started: NetworkTopology }> {
    const script = join(dir, "script.mts");
    const module = JSON.stringify(pathToFileURL(join(import.meta.dirname, "network-topology.ts")).href);
    await writeFile(
      script,
      `import { createNetworkTopology } from ${module};
       const topology = await createNetworkTopology({ hosts: 1 });
       await topology.exec(topology.hosts[0].netns, ["ip", "addr", "add", "10.255.255.1/32", "dev", "lo"]);
       console.log(JSON.stringify({ hosts: topology.hosts, internet: topology.internet }));
       setInterval(() => {}, 1000);`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, stdio: "pipe" });
    let out = "";
    for await (const chunk of child.stdout) {
      out += String(chunk);
      if (out.includes("\n")) break;
    }
    return { child, started: JSON.parse(out) as NetworkTopology };
  }

  it("deletes its namespaces and routes when the test process is stopped with SIGTERM", async () => {
    const { child, started } = await topologyOwner();
    expect(rootObjects(started)).not.toEqual([]);
    child.kill("SIGTERM");
    await once(child, "exit");
    expect(rootObjects(started)).toEqual([]);
  });

  it("reclaims the slot of an owner killed with SIGKILL, and what it left there", async () => {
    const { child, started } = await topologyOwner();
    child.kill("SIGKILL");
    await once(child, "exit");
    const dead = started.hosts[0]?.netns;
    expect(rootObjects(started)).not.toEqual([]);
    // Its internet server outlived it, orphaned in the slot's internet namespace.
    const orphans = execFileSync("ip", ["netns", "pids", started.internet.netns], { encoding: "utf8" });
    expect(orphans.trim()).not.toBe("");
    // Slots are claimed lowest first, so taking slots until the dead one comes round ends there.
    const held: NetworkTopology[] = [];
    try {
      for (;;) {
        const next = await createNetworkTopology({ hosts: 1, internet: false });
        held.push(next);
        if (next.hosts[0]?.netns === dead) break;
        expect(Number(/\d+/.exec(next.hosts[0]?.netns ?? "")?.[0])).toBeLessThan(
          Number(/\d+/.exec(dead ?? "")?.[0]),
        );
      }
      const reclaimed = held.at(-1) as NetworkTopology;
      // The dead owner's host namespace was deleted and made afresh: its mark is gone.
      const lo = await reclaimed.exec(dead as string, ["ip", "-o", "addr", "show", "dev", "lo"]);
      expect(lo.stdout).not.toContain("10.255.255.1");
      for (const pid of orphans.trim().split("\n")) expect(isAlive(Number(pid))).toBe(false);
    } finally {
      for (const topology of held) await topology.close();
    }
    expect(rootObjects(started)).toEqual([]);
  });
});

/** Connects from the test's own namespace, retrying while the server comes up. */
async function readFrom(address: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const socket = connect(PORT, address);
      socket.setTimeout(2000, () => socket.destroy(new Error(`no answer from ${address}:${PORT}`)));
      let text = "";
      socket.on("data", (chunk) => {
        text += String(chunk);
      });
      await once(socket, "end");
      return text;
    } catch (error) {
      if (attempt === 100) throw error;
      await new Promise((done) => setTimeout(done, 50));
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // An orphan re-parented to a container's pid 1 may never be reaped: a zombie is dead too.
  return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
}
