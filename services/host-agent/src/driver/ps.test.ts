import { describe, expect, it } from "vitest";
import { insideRoot, parseListenTable, parseProcStatus } from "./ps.js";

describe("parseProcStatus", () => {
  it("reads the pid in every namespace and the resident memory in bytes", () => {
    const text = "Name:\tnode\nNSpid:\t48211\t7\nVmRSS:\t   51200 kB\nThreads:\t7\n";
    expect(parseProcStatus(text)).toEqual({ nsPids: [48211, 7], rssBytes: 51200 * 1024 });
    expect(parseProcStatus("Name:\tkthreadd\nNSpid:\t2\n")).toEqual({ nsPids: [2], rssBytes: 0 });
  });
});

describe("parseListenTable", () => {
  const header =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
  it("keeps the LISTEN sockets of /proc/net/tcp with their inodes, addresses in dotted form", () => {
    const text = [
      header,
      "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41177 1 0 100 0 0 10 0",
      "   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41178 1 0 100 0 0 10 0",
      // An established connection is not a listening socket.
      "   2: 0100007F:1F90 0100007F:D2B4 01 00000000:00000000 00:00000000 00000000     0        0 41179 1 0 20 4 30 10 -1",
    ].join("\n");
    expect(parseListenTable(text, "tcp")).toEqual([
      { inode: "41177", socket: { proto: "tcp", address: "0.0.0.0:8080" } },
      { inode: "41178", socket: { proto: "tcp", address: "127.0.0.1:3306" } },
    ]);
  });

  it("prints tcp6 addresses compressed, as RFC 5952 says", () => {
    const text = [
      header,
      "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0 100 0 0 10 0",
      "   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0 100 0 0 10 0",
      "   2: 0000C0FD000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5003 1 0 100 0 0 10 0",
    ].join("\n");
    expect(parseListenTable(text, "tcp6").map((e) => e.socket.address)).toEqual([
      "[::]:8080",
      "[::1]:80",
      "[fdc0::1]:80",
    ]);
  });
});

describe("insideRoot", () => {
  it("makes a cwd relative to the process's root folder when it is under it", () => {
    expect(insideRoot("/var/lib/hangar/m1/rootfs/app", "/var/lib/hangar/m1/rootfs")).toBe("/app");
    expect(insideRoot("/var/lib/hangar/m1/rootfs", "/var/lib/hangar/m1/rootfs")).toBe("/");
    expect(insideRoot("/srv/app", "/")).toBe("/srv/app");
    expect(insideRoot("/var/lib/hangar/m1/rootfs-other", "/var/lib/hangar/m1/rootfs")).toBe(
      "/var/lib/hangar/m1/rootfs-other",
    );
  });
});
