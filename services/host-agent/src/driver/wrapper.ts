import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import { isSameLiveProcess, listPids, readCmdline, readProcStat } from "./proc.js";
import { signalName } from "./signals.js";
import type { ExitInfo } from "./types.js";

/*
 * Every machine runs under a small perl wrapper, the leader of the machine's own process group:
 *
 *   perl -e SCRIPT -- <exit file> <argv...>
 *
 * It forks, execs the argv, waits, writes the raw wait status to the exit file (tmp + rename) and
 * finally SIGKILLs its whole group, so stragglers the app left behind die with it, as in a VM.
 * It records the exit while no agent is there to wait for it, and its stdio goes to files, so an agent
 * that dies takes nothing with it.
 *
 * Why perl (perl-base is Essential in Debian) and not `sh -c 'trap : TERM ...; "$@"; echo $? > f'`:
 * the shell reports a death by signal n as 128+n, the same as exit(128+n), so "SIGINT" and exit(130)
 * look alike; every signal it does not trap kills it before it writes the file; and it prints
 * "Terminated" into the app's stderr. Perl's waitpid hands back the full status.
 *
 * The wrapper catches (never ignores) every signal whose default would kill it, so signals sent to the
 * group reach the app while the wrapper lives on to write the status. Caught handlers revert to the
 * default on exec, so the app starts with default dispositions (an ignored signal would stay ignored).
 * Signals are blocked across fork, until the child has put the defaults back: one sent in between waits
 * and then acts on the app by its default, instead of vanishing into a copy of the wrapper's handler.
 * Once the app is forked, the wrapper writes its pid to fd 3 (when open): the driver's start() waits for
 * that, so a stop right after a start cannot hit a wrapper that has not set its handlers yet.
 * SIGKILL cannot be caught: a group SIGKILL kills the wrapper too, and the driver then records the
 * exit itself, since it knows it sent the SIGKILL.
 * The wrapper first writes its own pid to each of the machine's cgroup.procs files (named by
 * CGROUP_ENV: the freezer's and the limits', see cgroup.ts and cgroup-limits.ts): joining before the
 * fork leaves no moment in which the app or a child of it runs outside its cgroups and limits. It dies
 * (before forking) when it cannot join one.
 * It also sets its own oom_score_adj to -1000 (where it may: root), so that when the machine's memory
 * cgroup runs out the OOM killer picks the app and never the wrapper, which must live to record the
 * exit. The child execs with OOM_SCORE_ADJ_ENV's value (0 by default): a runtime that gives its
 * container process its own oom_score_adj (crun, from the runtime spec) is itself kept at -1000.
 */

export const PERL = "/usr/bin/perl";

/**
 * The wrapper's environment variable naming the cgroup.procs files it joins before it forks,
 * separated by ':', so the app and everything it forks are in the machine's cgroups from their first
 * instruction. The wrapper removes it from the environment the app gets.
 */
export const CGROUP_ENV = "HANGAR_CGROUP_PROCS";

/**
 * The wrapper's environment variable giving the oom_score_adj its child execs with (default 0); the
 * wrapper removes it from the environment the app gets.
 */
export const OOM_SCORE_ADJ_ENV = "HANGAR_APP_OOM_SCORE_ADJ";

// Signals whose default action does not terminate (CHLD, CONT, URG, WINCH), cannot be caught (KILL,
// STOP), or stops the process (TSTP, TTIN, TTOU: a stopped wrapper is harmless and SIGCONT resumes it).
const KEEP_DEFAULT = new Set(["KILL", "STOP", "CHLD", "CONT", "URG", "WINCH", "TSTP", "TTIN", "TTOU"]);

const CAUGHT = [...new Set(Object.keys(constants.signals).map((name) => name.slice(3)))].filter(
  (name) => !KEEP_DEFAULT.has(name),
);

const SCRIPT = `use strict;
use POSIX ();
my $exit_file = shift @ARGV;
my $cgroup_procs = delete $ENV{${CGROUP_ENV}};
my $child_oom_adj = delete $ENV{${OOM_SCORE_ADJ_ENV}};
$child_oom_adj = "0" unless defined $child_oom_adj && $child_oom_adj ne "";
$child_oom_adj =~ /^-?[0-9]+$/ or die "hangar wrapper: ${OOM_SCORE_ADJ_ENV}=$child_oom_adj is not a number\n";
sub oom_score_adj {
  open(my $adj, ">", "/proc/self/oom_score_adj") or return 0;
  my $ok = defined(syswrite($adj, "$_[0]\n"));
  close($adj);
  return $ok;
}
my $protected = oom_score_adj(-1000);
for my $file (grep { $_ ne "" } split(/:/, defined $cgroup_procs ? $cgroup_procs : "")) {
  open(my $procs, ">", $file) or die "hangar wrapper: $file: $!\n";
  defined(syswrite($procs, "$$\n")) or die "hangar wrapper: joining the cgroup $file: $!\n";
  close($procs);
}
my @caught = qw(${CAUGHT.join(" ")});
$SIG{$_} = sub {} for @caught;
my $all = POSIX::SigSet->new;
$all->fillset;
my $mask = POSIX::SigSet->new;
POSIX::sigprocmask(POSIX::SIG_BLOCK(), $all, $mask) or die "hangar wrapper: sigprocmask: $!\n";
my $pid = fork();
defined $pid or die "hangar wrapper: fork: $!\n";
if ($pid == 0) {
  $SIG{$_} = "DEFAULT" for @caught;
  POSIX::close(3);
  if ($protected && !oom_score_adj($child_oom_adj)) {
    print STDERR "hangar wrapper: oom_score_adj $child_oom_adj: $!\n";
    POSIX::_exit(127);
  }
  POSIX::sigprocmask(POSIX::SIG_SETMASK(), $mask);
  exec { $ARGV[0] } @ARGV;
  print STDERR "hangar wrapper: exec $ARGV[0]: $!\n";
  POSIX::_exit(127);
}
POSIX::sigprocmask(POSIX::SIG_SETMASK(), $mask);
if (open(my $ready, ">&=", 3)) {
  print $ready "$pid\n";
  close($ready);
}
my $status = waitpid($pid, 0) == $pid ? $? : -1;
open(my $out, ">", "$exit_file.tmp") or die "hangar wrapper: $exit_file.tmp: $!\n";
print $out "$status\n";
close($out) or die "hangar wrapper: $exit_file.tmp: $!\n";
rename("$exit_file.tmp", $exit_file) or die "hangar wrapper: $exit_file: $!\n";
kill("-KILL", $$);
`;

/** The argv that runs `cmd` under the wrapper, recording its exit status in `exitFile`. */
export function wrapperArgs(exitFile: string, cmd: readonly string[]): string[] {
  return ["-e", SCRIPT, "--", exitFile, ...cmd];
}

/**
 * Resolves once the wrapper has forked the app and its signal handlers are set: it then closes fd 3
 * (given to it as `stream`). Also resolves when the wrapper dies before that; its exit tells the rest.
 */
export function untilForked(stream: Readable | Writable | null | undefined): Promise<void> {
  if (!stream || stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
    stream.once("error", () => resolve());
    // Flowing mode, so that the pid the wrapper writes does not sit unread and "close" can come.
    if ("resume" in stream) stream.resume();
  });
}

/** The raw wait status the wrapper recorded; null when there is none (yet) or it could not wait. */
export async function readExitStatus(exitFile: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(exitFile, "utf8");
  } catch {
    return null;
  }
  const status = Number.parseInt(text, 10);
  return Number.isInteger(status) && status >= 0 ? status : null;
}

/** Exit code and signal from a wait status: 128+n and the signal's name after a death by signal n. */
export function decodeWaitStatus(status: number): Omit<ExitInfo, "requested"> {
  const signal = status & 0x7f;
  if (signal === 0) return { exitCode: (status >> 8) & 0xff };
  return { exitCode: 128 + signal, signal: signalName(signal) };
}

/** The live wrapper process writing `exitFile`, found by its argv (for a run whose pid was never recorded). */
export function findWrapper(exitFile: string): { pid: number; startTime: number } | null {
  for (const pid of listPids()) {
    const argv = readCmdline(pid);
    if (argv?.[0] !== PERL || argv[3] !== "--" || argv[4] !== exitFile) continue;
    const stat = readProcStat(pid);
    if (stat && isSameLiveProcess(pid, stat.startTime)) return { pid, startTime: stat.startTime };
  }
  return null;
}
