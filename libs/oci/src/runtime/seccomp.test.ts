import { describe, expect, it } from "vitest";
import { convertProfile, loadContainersProfile } from "./seccomp.js";
import { DEFAULT_CAPABILITIES } from "./spec.js";

const profile = {
  defaultAction: "SCMP_ACT_ERRNO",
  defaultErrnoRet: 38,
  archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] }],
  syscalls: [
    { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
    { names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } },
    { names: ["arch_prctl"], action: "SCMP_ACT_ALLOW", includes: { arches: ["amd64"] } },
    { names: ["set_tls"], action: "SCMP_ACT_ALLOW", includes: { arches: ["arm64"] } },
    {
      names: ["clone"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value: 2114060288, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
      excludes: { caps: ["CAP_SYS_ADMIN"] },
    },
    { names: ["futex_waitv"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "5.16" } },
    { names: ["ptrace"], action: "SCMP_ACT_ERRNO", errnoRet: 1 },
  ],
};

describe("convertProfile", () => {
  it("keeps the rules of this architecture and capability set, as podman does", () => {
    const oci = convertProfile(profile, DEFAULT_CAPABILITIES, "x64", "6.1.0");
    expect(oci.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(oci.defaultErrnoRet).toBe(38);
    expect(oci.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    const names = oci.syscalls.flatMap((s) => s.names);
    expect(names).toEqual(["read", "write", "arch_prctl", "clone", "futex_waitv", "ptrace"]);
    expect(oci.syscalls.find((s) => s.names.includes("clone"))?.args).toEqual([
      { index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" },
    ]);
    expect(oci.syscalls.find((s) => s.names.includes("ptrace"))?.errnoRet).toBe(1);
  });

  it("adds what a capability allows and drops what it excludes", () => {
    const names = convertProfile(
      profile,
      [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
      "x64",
      "6.1.0",
    ).syscalls.flatMap((s) => s.names);
    expect(names).toContain("mount");
    expect(names).not.toContain("clone");
  });

  it("drops rules for newer kernels and other architectures", () => {
    const names = convertProfile(profile, DEFAULT_CAPABILITIES, "arm64", "5.10.0").syscalls.flatMap(
      (s) => s.names,
    );
    expect(names).toContain("set_tls");
    expect(names).not.toContain("arch_prctl");
    expect(names).not.toContain("futex_waitv");
  });

  it("refuses an architecture it has no name for", () => {
    expect(() => convertProfile(profile, DEFAULT_CAPABILITIES, "mips", "6.1.0")).toThrow(/mips/);
  });

  it("converts the host's containers-common profile: no module or kexec calls for podman's set", async () => {
    const oci = convertProfile(await loadContainersProfile(), DEFAULT_CAPABILITIES);
    const allowed = new Set(
      oci.syscalls.filter((s) => s.action === "SCMP_ACT_ALLOW" && !s.args).flatMap((s) => s.names),
    );
    expect(allowed.has("read")).toBe(true);
    // mount and unshare pass the filter, as in podman: capabilities and user.max_user_namespaces refuse them.
    for (const call of ["init_module", "finit_module", "kexec_load", "open_by_handle_at", "bpf"])
      expect(allowed.has(call)).toBe(false);
    const admin = convertProfile(await loadContainersProfile(), [...DEFAULT_CAPABILITIES, "CAP_SYS_MODULE"]);
    expect(admin.syscalls.some((s) => s.action === "SCMP_ACT_ALLOW" && s.names.includes("init_module"))).toBe(
      true,
    );
  });
});
