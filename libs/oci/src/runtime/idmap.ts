import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { SystemToolError } from "../errors.js";
import { run } from "../exec.js";
import { emptyLower, unmountIfMounted } from "../rootfs.js";
import type { IdRange } from "./spec.js";

/*
 * A machine's root filesystem over the shared unpacked layers, so a user namespace's root sees an
 * image's files as its own without a copy or a chown per machine (mount_setattr(2) with
 * MOUNT_ATTR_IDMAP, Linux 5.12+; overlayfs over idmapped layers, 5.19+). Node has no binding for the
 * new mount API and Debian bookworm's util-linux (2.38) no X-mount.idmap yet, so perl (Essential in
 * Debian, without modules: it starts in 2 ms) makes the syscalls, in one process per root filesystem:
 * it forks a child into a new user namespace with the range's mapping; for each layer it clones the
 * layer's mount tree (open_tree), detached, and marks the clone idmapped through that namespace and
 * read-only, nosuid, nodev (mount_setattr); then it mounts the overlay with each lower named by its
 * clone's descriptor (/proc/self/fd/N). The overlay keeps its own references to the clones, so
 * nothing is attached anywhere else and nothing is left to unmount. Overlayfs takes detached mounts
 * as lowers from Linux 6.15 ("fs: allow detached mounts in clone_private_mount()"); an older kernel
 * refuses them with EINVAL, and the script then attaches each clone to a folder of `$stage`
 * (move_mount), mounts the overlay over those folders, and detaches them (umount2 MNT_DETACH): the
 * overlay holds its own copies. open_tree, move_mount and mount_setattr have the same numbers on
 * every architecture; unshare, mount and umount2 do not.
 */
const OVERLAY_SCRIPT = `use strict;
my ($arch, $base, $count, $target, $data, $flags, $stage, $attach, @lowers) = @ARGV;
my %unshare = (x64 => 272, arm64 => 97, ppc64 => 282, s390x => 303, riscv64 => 97);
my %mount = (x64 => 165, arm64 => 40, ppc64 => 21, s390x => 21, riscv64 => 40);
my %umount2 = (x64 => 166, arm64 => 39, ppc64 => 52, s390x => 52, riscv64 => 39);
my $nr_unshare = $unshare{$arch} // die "idmap: no unshare syscall number for $arch\\n";
my $nr_mount = $mount{$arch} // die "idmap: no mount syscall number for $arch\\n";
my $nr_umount2 = $umount2{$arch} // die "idmap: no umount2 syscall number for $arch\\n";
pipe(my $ready_r, my $ready_w) or die "idmap: pipe: $!\\n";
pipe(my $done_r, my $done_w) or die "idmap: pipe: $!\\n";
my $pid = fork() // die "idmap: fork: $!\\n";
if ($pid == 0) {
  close $ready_r; close $done_w;
  syscall($nr_unshare, 0x10000000) == 0 or exit(1);
  syswrite($ready_w, "1"); close $ready_w;
  sysread($done_r, my $x, 1);
  exit(0);
}
close $ready_w; close $done_r;
sysread($ready_r, my $ok, 1) == 1 or die "idmap: could not create a user namespace\\n";
for my $map ("uid_map", "gid_map") {
  open(my $f, ">", "/proc/$pid/$map") or die "idmap: $map: $!\\n";
  syswrite($f, "0 $base $count\\n") or die "idmap: writing $map: $!\\n";
  close $f;
}
open(my $ns, "<", "/proc/$pid/ns/user") or die "idmap: user namespace: $!\\n";
my $nsfd = fileno($ns);
my @fds;
for my $src (@lowers) {
  # open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
  my $fd = syscall(428, -100, $src, 0x1 | 0x80000);
  $fd >= 0 or die "idmap: open_tree $src: $!\\n";
  # MOUNT_ATTR_IDMAP | RDONLY | NOSUID | NODEV, through the namespace's fd
  my $attr = pack("QQQQ", 0x00100000 | 0x1 | 0x2 | 0x4, 0, 0, $nsfd);
  my $empty = "";
  syscall(442, $fd, $empty, 0x1000, $attr, length $attr) == 0 or die "idmap: mount_setattr $src: $!\\n";
  push @fds, $fd;
}
close $done_w;
waitpid($pid, 0);
my ($source, $type) = ("overlay", "overlay");
my $options = "lowerdir=" . join(":", map { "/proc/self/fd/$_" } @fds) . $data;
if ($attach eq "detached") {
  exit(0) if syscall($nr_mount, $source, $target, $type, $flags + 0, $options) == 0;
  # EINVAL (22 on Linux): detached lowers are refused (before 6.15).
  $! + 0 == 22 or die "idmap: mounting the overlay at $target: $!\\n";
}
# Before Linux 6.15: each clone attached to a folder of $stage, the overlay over those, then detached.
mkdir($stage, 0700) or die "idmap: $stage: $!\\n";
my @points;
for my $i (0 .. $#fds) {
  my $point = "$stage/$i";
  mkdir($point, 0700) or die "idmap: $point: $!\\n";
  my $empty = "";
  # move_mount(fd, "", AT_FDCWD, point, MOVE_MOUNT_F_EMPTY_PATH)
  syscall(429, $fds[$i], $empty, -100, $point, 0x4) == 0 or die "idmap: move_mount $point: $!\\n";
  push @points, $point;
}
$options = "lowerdir=" . join(":", @points) . $data;
my $mounted = syscall($nr_mount, $source, $target, $type, $flags + 0, $options) == 0;
my $error = "$!";
for my $point (@points) {
  syscall($nr_umount2, $point, 2);
  rmdir($point);
}
rmdir($stage);
$mounted or die "idmap: mounting the overlay at $target: $error\\n";
`;

/** mount(2) flags of a machine's root filesystem: MS_NOSUID | MS_NODEV. */
const ROOTFS_FLAGS = 0x2 | 0x4;

/**
 * Mounts at `target` an overlay (nosuid, nodev) of `lowers` (top first) under `upper`, with each lower
 * seen through an idmapped mount into `range`: container root owns what host root owns in the layers,
 * and what the machine writes lands in `upper` owned by range ids. One perl process (see
 * OVERLAY_SCRIPT); nothing but the overlay is mounted, so nothing else is left to clean. `upper` and
 * `work` must belong to the range's root (see prepareUpper).
 */
export async function mountIdmappedOverlay(o: {
  lowers: readonly string[];
  upper: string;
  work: string;
  target: string;
  range: IdRange;
  /**
   * "detached" (the default): the layers' clones are the overlay's lowers as they are, or, on a
   * kernel that refuses that, attached to folders first; "staged": attached first in any case (tests
   * of what kernels before 6.15 do).
   */
  attach?: "detached" | "staged";
}): Promise<void> {
  const upper = resolve(o.upper);
  const work = resolve(o.work);
  const target = resolve(o.target);
  const lowers = o.lowers.length > 0 ? o.lowers.map((l) => resolve(l)) : [await emptyLower()];
  for (const p of [upper, work]) {
    if (/[,:\\]/.test(p))
      throw new SystemToolError(`overlay path ${p} has a comma, colon or backslash; mount cannot take it`);
  }
  await Promise.all([upper, work, target].map((d) => mkdir(d, { recursive: true })));
  const args = [
    "-e",
    OVERLAY_SCRIPT,
    "--",
    process.arch,
    String(o.range.hostId),
    String(o.range.size),
    target,
    `,upperdir=${upper},workdir=${work}`,
    String(ROOTFS_FLAGS),
    // Made only on a kernel that refuses detached lowers, beside the work folder (same filesystem).
    join(dirname(work), `.idmap-${randomBytes(6).toString("hex")}`),
    o.attach ?? "detached",
    ...lowers,
  ];
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((done, fail) => {
    const child = spawn("/usr/bin/perl", args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.once("error", fail);
    child.once("close", (c) => done({ code: c ?? -1, stderr: err }));
  });
  if (code !== 0) throw new SystemToolError(`idmapped overlay failed: ${stderr.trim() || `exit ${code}`}`);
}

/** Makes `dir` (and its missing parents) owned by the range's root, 0755: an upper or work folder. */
export async function chownToRange(dir: string, range: IdRange): Promise<void> {
  await mkdir(dir, { recursive: true });
  await run("chown", [`${range.hostId}:${range.hostId}`, dir]);
}

export { unmountIfMounted };
