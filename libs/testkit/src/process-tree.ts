import { readdirSync, readFileSync } from "node:fs";

/**
 * Signals a process and every descendant, children first read from /proc: a process group does not
 * hold them all (postgres' children each lead a session of their own), and SIGKILL of the tree is
 * what a machine's processes get when it is killed. A process already gone is skipped.
 */
export function signalProcessTree(pid: number, signal: NodeJS.Signals): void {
  let children: string[] = [];
  try {
    children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(" ").filter(Boolean),
    );
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
  for (const child of children) signalProcessTree(Number(child), signal);
}
