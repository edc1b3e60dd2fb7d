import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rmdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { SystemToolError } from "../errors.js";
import { run } from "../exec.js";
import { mountOverlay, unmountIfMounted } from "../rootfs.js";
import type { IdRange } from "./spec.js";

/*
 * Idmapped mounts of the shared unpacked layers, so a user namespace's root sees an image's files as
 * its own without a copy or a chown per machine (mount_setattr(2) with MOUNT_ATTR_IDMAP, Linux 5.12+;
 * overlayfs over idmapped layers, 5.19+). Node has no binding for the new mount API and Debian
 * bookworm's util-linux (2.38) no X-mount.idmap yet, so perl (Essential in Debian, already the
 * machines' wrapper) makes the syscalls: it forks a child into a new user namespace with the range's
 * mapping, and for each layer clones its mount tree (open_tree), marks the clone idmapped through that
 * namespace and read-only, nosuid, nodev (mount_setattr), and attaches it (move_mount).
 * open_tree, move_mount and mount_setattr have the same numbers on every architecture; unshare does not.
 */
const IDMAP_SCRIPT = `use strict;
use POSIX ();
my ($base, $count, @pairs) = @ARGV;
my %unshare = (x86_64 => 272, aarch64 => 97, ppc64le => 282, s390x => 303, riscv64 => 97);
my $machine = (POSIX::uname())[4];
my $nr_unshare = $unshare{$machine} // die "idmap: no unshare syscall number for $machine\\n";
pipe(my $ready_r, my $ready_w) or die "idmap: pipe: $!\\n";
pipe(my $done_r, my $done_w) or die "idmap: pipe: $!\\n";
my $pid = fork() // die "idmap: fork: $!\\n";
if ($pid == 0) {
  close $ready_r; close $done_w;
  syscall($nr_unshare, 0x10000000) == 0 or POSIX::_exit(1);
  syswrite($ready_w, "1"); close $ready_w;
  sysread($done_r, my $x, 1);
  POSIX::_exit(0);
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
while (@pairs) {
  my ($src, $dst) = splice(@pairs, 0, 2);
  # open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
  my $fd = syscall(428, -100, $src, 0x1 | 0x80000);
  $fd >= 0 or die "idmap: open_tree $src: $!\\n";
  # MOUNT_ATTR_IDMAP | RDONLY | NOSUID | NODEV, through the namespace's fd
  my $attr = pack("QQQQ", 0x00100000 | 0x1 | 0x2 | 0x4, 0, 0, $nsfd);
  my $empty = "";
  syscall(442, $fd, $empty, 0x1000, $attr, length $attr) == 0 or die "idmap: mount_setattr $src: $!\\n";
  my $empty2 = "";
  syscall(429, $fd, $empty2, -100, $dst, 0x4) == 0 or die "idmap: move_mount $dst: $!\\n";
  POSIX::close($fd);
}
close $done_w;
waitpid($pid, 0);
`;

/** Mounts each `[source, target]` layer folder idmapped into `range` (read-only, nosuid, nodev). */
export async function idmapMounts(
  range: IdRange,
  pairs: ReadonlyArray<readonly [string, string]>,
): Promise<void> {
  const args = ["-e", IDMAP_SCRIPT, "--", String(range.hostId), String(range.size)];
  for (const [src, dst] of pairs) args.push(resolve(src), resolve(dst));
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((done, fail) => {
    const child = spawn("/usr/bin/perl", args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.once("error", fail);
    child.once("close", (c) => done({ code: c ?? -1, stderr: err }));
  });
  if (code !== 0) throw new SystemToolError(`idmapped mounts failed: ${stderr.trim() || `exit ${code}`}`);
}

/**
 * Mounts at `target` an overlay (nosuid, nodev) of `lowers` (top first) under `upper`, with each lower
 * seen through an idmapped mount into `range`: container root owns what host root owns in the layers,
 * and what the machine writes lands in `upper` owned by range ids. The idmapped mounts live only until
 * the overlay holds them (overlayfs keeps private clones of its layers), so nothing is left to clean
 * but the overlay itself. `upper` and `work` must belong to the range's root (see prepareUpper).
 */
export async function mountIdmappedOverlay(o: {
  lowers: readonly string[];
  upper: string;
  work: string;
  target: string;
  range: IdRange;
}): Promise<void> {
  const staging = await mkdtemp(join(dirname(resolve(o.work)), ".idmap-"));
  const points = o.lowers.map((_, i) => join(staging, String(i)));
  try {
    for (const p of points) await mkdir(p);
    await idmapMounts(
      o.range,
      o.lowers.map((l, i) => [l, points[i] as string] as const),
    );
    await mountOverlay({
      lowers: points,
      upper: o.upper,
      work: o.work,
      target: o.target,
      options: ["nosuid", "nodev"],
    });
  } finally {
    for (const p of points) {
      // Lazily: the overlay holds its own clones, the staging mounts are no longer needed.
      await run("umount", ["-l", p], { allowFailure: true });
      await rmdir(p).catch(() => {});
    }
    await rmdir(staging).catch(() => {});
  }
}

/** Makes `dir` (and its missing parents) owned by the range's root, 0755: an upper or work folder. */
export async function chownToRange(dir: string, range: IdRange): Promise<void> {
  await mkdir(dir, { recursive: true });
  await run("chown", [`${range.hostId}:${range.hostId}`, dir]);
}

export { unmountIfMounted };
