import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { ListenSocket, ProcessStat } from "@hangar/service";
import { listPids, type ProcStat, readCmdline, readProcStat } from "./proc.js";

/*
 * A machine's processes as it sees them itself, for Fly's `GET .../ps`: read from the host's /proc,
 * since running `ps` inside would need a ps binary in every image and would itself show up.
 */

/**
 * /proc/<pid>/stat counts CPU and start times in USER_HZ ticks, which the kernel's ABI fixes at 100 on
 * every architecture Node runs on (sysconf(_SC_CLK_TCK)); Node has no way to ask.
 */
const TICK_MS = 10;
/** The TCP state of a listening socket in /proc/net/tcp (include/net/tcp_states.h: TCP_LISTEN = 10). */
const TCP_LISTEN = "0A";

/** What the driver knows of a running machine: its wrapper (the group leader) and its cgroup's processes. */
export interface MachineProcesses {
  /** The wrapper's pid, which leads the machine's process group. */
  leader: number;
  /** The processes in the machine's cgroup now (exec'd commands join it too); empty without one. */
  cgroupPids: number[];
}

interface Candidate {
  pid: number;
  stat: ProcStat;
}

/**
 * The machine's processes: those of its process group, its cgroup and the wrapper's descendants that
 * share the pid namespace of the machine's init (the descendant that is pid 1 of its own namespace),
 * each with its pid inside that namespace. A machine without a pid namespace of its own (a plain
 * process) shows its process group minus the wrapper. Sorted by pid.
 */
export function machineProcesses(machine: MachineProcesses): ProcessStat[] {
  const members = membersOf(machine);
  const init = members.find((c) => c.pid !== machine.leader && isNamespaceInit(c.pid));
  const initNs = init ? pidNamespace(init.pid) : null;
  const shown =
    initNs !== null
      ? members.filter((c) => pidNamespace(c.pid) === initNs)
      : members.filter((c) => c.pid !== machine.leader && c.stat.pgrp === machine.leader);
  const uptimeMs = readUptimeMs();
  const sockets = new ListenTables();
  const stats: ProcessStat[] = [];
  for (const c of shown) {
    const stat = processStat(c, uptimeMs, sockets);
    if (stat) stats.push(stat);
  }
  return stats.sort((a, b) => a.pid - b.pid);
}

/** The pids of every live process of the machine: its group, its cgroup, all the wrapper forked. */
export function machinePids(machine: MachineProcesses): number[] {
  return membersOf(machine).map((c) => c.pid);
}

/** The live processes of the machine's group or cgroup, and everything the wrapper forked, however deep. */
function membersOf(machine: MachineProcesses): Candidate[] {
  const all = new Map<number, ProcStat>();
  for (const pid of listPids()) {
    const stat = readProcStat(pid);
    if (stat && stat.state !== "Z" && stat.state !== "X") all.set(pid, stat);
  }
  const children = new Map<number, number[]>();
  for (const [pid, stat] of all) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  const chosen = new Set<number>(machine.cgroupPids.filter((pid) => all.has(pid)));
  for (const [pid, stat] of all) if (stat.pgrp === machine.leader) chosen.add(pid);
  // A process that left the group (setsid) is still a descendant, unless it was reparented to the host's init.
  const queue = all.has(machine.leader) ? [machine.leader] : [];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    chosen.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...chosen].flatMap((pid) => {
    const stat = all.get(pid);
    return stat ? [{ pid, stat }] : [];
  });
}

/** The pid namespace a process is in (its /proc/<pid>/ns/pid link, e.g. `pid:[4026532290]`); null when gone. */
function pidNamespace(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/** The fields of /proc/<pid>/status ps needs. */
export interface ProcStatus {
  /** The pid in each pid namespace the process is in, the host's first, its own last. */
  nsPids: number[];
  /** VmRSS in bytes; 0 when the process has no memory of its own (a kernel thread, a zombie). */
  rssBytes: number;
}

/** Parses /proc/<pid>/status (proc(5)): NSpid (Linux 4.1+) and VmRSS. */
export function parseProcStatus(text: string): ProcStatus {
  let nsPids: number[] = [];
  let rssBytes = 0;
  for (const line of text.split("\n")) {
    const [key, value = ""] = line.split(":\t");
    if (key === "NSpid") nsPids = value.trim().split(/\s+/).map(Number);
    else if (key === "VmRSS") rssBytes = Number.parseInt(value, 10) * 1024;
  }
  return { nsPids, rssBytes };
}

function readStatus(pid: number): ProcStatus | null {
  try {
    return parseProcStatus(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return null;
  }
}

/** Whether the process is pid 1 of a pid namespace below the host's. */
function isNamespaceInit(pid: number): boolean {
  const status = readStatus(pid);
  return status !== null && status.nsPids.length > 1 && status.nsPids.at(-1) === 1;
}

function readUptimeMs(): number {
  return Number.parseFloat(readFileSync("/proc/uptime", "utf8")) * 1000;
}

/** One process as Fly's ProcessStat; null when it went away while being read. */
function processStat(c: Candidate, uptimeMs: number, sockets: ListenTables): ProcessStat | null {
  const status = readStatus(c.pid);
  if (!status) return null;
  const argv = readCmdline(c.pid);
  return {
    pid: status.nsPids.at(-1) ?? c.pid,
    command: argv ? argv.join(" ") : `[${commOf(c.pid)}]`,
    directory: directoryOf(c.pid),
    rss: status.rssBytes,
    cpu: (c.stat.utime + c.stat.stime) * TICK_MS,
    stime: c.stat.stime * TICK_MS,
    rtime: Math.max(0, Math.round(uptimeMs - c.stat.startTime * TICK_MS)),
    listen_sockets: sockets.of(c.pid),
  };
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}

/** The working folder inside the machine: the cwd with the process's root folder taken off. */
function directoryOf(pid: number): string {
  try {
    return insideRoot(readlinkSync(`/proc/${pid}/cwd`), readlinkSync(`/proc/${pid}/root`));
  } catch {
    return "";
  }
}

/** `cwd` as seen from `root` when it is under it; as it is otherwise. */
export function insideRoot(cwd: string, root: string): string {
  if (root === "/" || root === "") return cwd;
  if (cwd === root) return "/";
  return cwd.startsWith(`${root}/`) ? cwd.slice(root.length) : cwd;
}

/** One listening socket of /proc/net/tcp or tcp6, with the inode that ties it to a process's fd. */
export interface ListenEntry {
  inode: string;
  socket: ListenSocket;
}

/** The LISTEN lines of a /proc/<pid>/net/tcp or tcp6 table. */
export function parseListenTable(text: string, proto: "tcp" | "tcp6"): ListenEntry[] {
  const entries: ListenEntry[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const inode = fields[9];
    if (fields[3] !== TCP_LISTEN || !local || !inode) continue;
    const [hexIp = "", hexPort = ""] = local.split(":");
    const port = Number.parseInt(hexPort, 16);
    const address = proto === "tcp" ? `${ipv4(hexIp)}:${port}` : `[${ipv6(hexIp)}]:${port}`;
    entries.push({ inode, socket: { proto, address } });
  }
  return entries;
}

/** /proc/net/tcp prints an IPv4 address as one 32-bit word in host (little-endian) byte order. */
function ipv4(hex: string): string {
  return [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join(".");
}

/** /proc/net/tcp6 prints an IPv6 address as four 32-bit words, each in host (little-endian) byte order. */
function ipv6(hex: string): string {
  const bytes: number[] = [];
  for (let word = 0; word < 4; word++) {
    for (const i of [6, 4, 2, 0]) bytes.push(Number.parseInt(hex.slice(word * 8 + i, word * 8 + i + 2), 16));
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return compressIpv6(groups);
}

/** RFC 5952: the longest run of two or more zero groups becomes "::". */
function compressIpv6(groups: string[]): string {
  let best = { at: -1, len: 0 };
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  if (best.len < 2) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.len).join(":")}`;
}

/** The listening sockets of each network namespace, read once per ps, and the processes that hold them. */
class ListenTables {
  readonly #byNetns = new Map<string, Map<string, ListenSocket>>();

  /** The sockets the process holds open that listen, in the order of its fds. */
  of(pid: number): ListenSocket[] {
    const table = this.#table(pid);
    if (table.size === 0) return [];
    const found: ListenSocket[] = [];
    for (const inode of socketInodes(pid)) {
      const socket = table.get(inode);
      if (socket) found.push(socket);
    }
    return found;
  }

  #table(pid: number): Map<string, ListenSocket> {
    let netns: string;
    try {
      netns = readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      return new Map();
    }
    let table = this.#byNetns.get(netns);
    if (!table) {
      table = new Map();
      for (const proto of ["tcp", "tcp6"] as const) {
        let text: string;
        try {
          text = readFileSync(`/proc/${pid}/net/${proto}`, "utf8");
        } catch {
          // No IPv6 in the kernel, or the process is gone.
          continue;
        }
        for (const e of parseListenTable(text, proto)) table.set(e.inode, e.socket);
      }
      this.#byNetns.set(netns, table);
    }
    return table;
  }
}

/** The inodes of the sockets a process has open (its fds that link to `socket:[<inode>]`). */
function socketInodes(pid: number): string[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const inodes = new Set<string>();
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1]) inodes.add(match[1]);
    } catch {
      // Closed meanwhile.
    }
  }
  return [...inodes];
}
