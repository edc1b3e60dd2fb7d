import { describe, expect, it } from "vitest";
import { DEFAULT_CAPABILITIES, INIT_PATH, runtimeSpec } from "./spec.js";

const seccomp = { defaultAction: "SCMP_ACT_ERRNO", architectures: ["SCMP_ARCH_X86_64"], syscalls: [] };
const base = {
  rootfs: "/run/hangar/rootfs/x/m1",
  args: ["node", "server.js"],
  env: { PORT: "8080" },
  cwd: "/app",
  user: { uid: 0, gid: 0 },
  idRange: { hostId: 1_000_000, size: 65536 },
  hardened: true,
  seccomp,
  network: { kind: "netns", path: "/run/netns/hangar-m1" } as const,
  hostname: "m1",
  init: "/usr/bin/catatonit",
};

/** The CapEff bitmask of a list of capability names. */
function mask(caps: readonly string[]): bigint {
  const numbers: Record<string, number> = {
    CAP_CHOWN: 0,
    CAP_DAC_OVERRIDE: 1,
    CAP_FOWNER: 3,
    CAP_FSETID: 4,
    CAP_KILL: 5,
    CAP_SETGID: 6,
    CAP_SETUID: 7,
    CAP_SETPCAP: 8,
    CAP_NET_BIND_SERVICE: 10,
    CAP_SYS_CHROOT: 18,
    CAP_SETFCAP: 31,
  };
  return caps.reduce((m, c) => m | (1n << BigInt(numbers[c] ?? 63)), 0n);
}

describe("runtimeSpec", () => {
  it("gives root podman's default capabilities (0x800405fb), seccomp, no_new_privs and masked paths", () => {
    const spec = runtimeSpec(base) as {
      process: {
        capabilities: Record<string, string[]>;
        noNewPrivileges: boolean;
        args: string[];
        env: string[];
      };
      linux: Record<string, unknown>;
    };
    expect(mask(DEFAULT_CAPABILITIES)).toBe(0x800405fbn);
    for (const set of ["bounding", "effective", "permitted"])
      expect(spec.process.capabilities[set]).toEqual(DEFAULT_CAPABILITIES);
    expect(spec.process.capabilities.ambient).toEqual([]);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.process.args).toEqual([INIT_PATH, "--", "node", "server.js"]);
    expect(spec.process.env).toEqual(["PORT=8080"]);
    expect(spec.linux.seccomp).toBe(seccomp);
    expect(spec.linux.maskedPaths).toContain("/proc/kcore");
    expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 1_000_000, size: 65536 }]);
    expect(spec.linux.namespaces).toEqual([
      { type: "pid" },
      { type: "ipc" },
      { type: "uts" },
      { type: "mount" },
      { type: "user" },
      { type: "network", path: "/run/netns/hangar-m1" },
    ]);
  });

  it("gives a non-root user no effective capabilities, only the bounding set", () => {
    const spec = runtimeSpec({ ...base, user: { uid: 1000, gid: 1000 } }) as {
      process: { capabilities: Record<string, string[]>; user: unknown };
    };
    expect(spec.process.capabilities.effective).toEqual([]);
    expect(spec.process.capabilities.permitted).toEqual([]);
    expect(spec.process.capabilities.bounding).toEqual(DEFAULT_CAPABILITIES);
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000] });
  });

  it("mounts every bind nosuid and nodev, and /sys read-only", () => {
    const spec = runtimeSpec({
      ...base,
      binds: [{ src: "/etc/resolv.conf", dest: "/etc/resolv.conf", readOnly: true }],
    }) as { mounts: Array<{ destination: string; options: string[] }> };
    for (const m of spec.mounts.filter((m) => m.options.includes("rbind"))) {
      expect(m.options).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
    }
    expect(spec.mounts.find((m) => m.destination === "/sys")?.options).toContain("ro");
    expect(spec.mounts.find((m) => m.destination === INIT_PATH)?.options).toContain("ro");
  });

  it("refuses a hardened spec without a seccomp profile", () => {
    expect(() => runtimeSpec({ ...base, seccomp: undefined })).toThrow(/seccomp/);
  });

  it("drops the hardening only when asked (the benchmark's baseline)", () => {
    const spec = runtimeSpec({ ...base, hardened: false, idRange: null }) as {
      process: { noNewPrivileges: boolean; capabilities: { bounding: string[] } };
      linux: Record<string, unknown>;
    };
    expect(spec.process.noNewPrivileges).toBe(false);
    expect(spec.process.capabilities.bounding).toContain("CAP_SYS_ADMIN");
    expect(spec.linux.seccomp).toBeUndefined();
    expect(spec.linux.uidMappings).toBeUndefined();
  });
});
