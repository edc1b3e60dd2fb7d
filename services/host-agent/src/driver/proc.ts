import { readdirSync, readFileSync } from "node:fs";

/** The fields of /proc/<pid>/stat the driver needs. */
export interface ProcStat {
  /** R, S, D, T, Z, ... (Z: a zombie, dead but not yet reaped). */
  state: string;
  ppid: number;
  pgrp: number;
  startTime: number;
  /** CPU time in user and system mode, clock ticks. */
  utime: number;
  stime: number;
}

/** Reads /proc/<pid>/stat; null when no such process exists. */
export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  // Field 2 (comm) is in parentheses and may itself hold spaces and parentheses: split after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  const state = fields[0];
  const startTime = Number(fields[19]);
  if (state === undefined || !Number.isFinite(startTime)) return null;
  return {
    state,
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTime,
    utime: Number(fields[11]),
    stime: Number(fields[12]),
  };
}

/** Whether `pid` is a live (not zombie) process that started at `startTime`, not a later one reusing the pid. */
export function isSameLiveProcess(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  return stat !== null && stat.startTime === startTime && !isDeadState(stat.state);
}

function isDeadState(state: string): boolean {
  return state === "Z" || state === "X" || state === "x";
}

/** The argv of a process (/proc/<pid>/cmdline); null when it is gone or has none (kernel threads, zombies). */
export function readCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (raw === "") return null;
    return (raw.endsWith("\0") ? raw.slice(0, -1) : raw).split("\0");
  } catch {
    return null;
  }
}

/** The pids of all processes. */
export function listPids(): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}
