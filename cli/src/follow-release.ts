import { setTimeout as sleep } from "node:timers/promises";
import type { ApiClient } from "./api.js";
import { formatLogEntry } from "./logs.js";
import type { Machine, Release } from "./types.js";

/** The statuses a release ends with. */
export const ENDED = new Set(["succeeded", "failed"]);

/** The commands a release may run before it replaces machines, in the order they run. */
const COMMAND_KEYS = ["release_command", "seed_command"] as const;
type CommandKey = (typeof COMMAND_KEYS)[number];

/** What a machine is, as a deploy prints it: its state and whether its checks pass. */
function describe(m: Machine): string {
  const checks = m.checks ?? [];
  const failing = checks.filter((c) => c.status !== "passing").length;
  const health =
    checks.length === 0
      ? ""
      : failing === 0
        ? ", checks passing"
        : `, ${failing} of ${checks.length} checks not passing`;
  return `${m.state ?? "unknown"}${health}`;
}

/**
 * Follows a release the platform carries out until it ends, printing each change of its status and
 * of the app's machines (created, healthy, destroyed), and resolves to the ended release. Stopping
 * this (Ctrl-C, a lost connection) leaves the release running: the platform ends it either way.
 */
export async function followRelease(
  api: Pick<ApiClient, "getRelease" | "listMachines" | "appLogs">,
  app: string,
  version: number,
  progress: (text: string) => void,
  opts: { pollMs?: number; signal?: AbortSignal } = {},
): Promise<Release> {
  let status = "";
  const seen = new Map<string, string>();
  // The release_command's output (then a launch's seed_command's), followed from its start until it has ended.
  const commands = new Map<
    CommandKey,
    { stop: AbortController; done: Promise<void>; output: CommandOutput; ended: boolean }
  >();
  try {
    for (;;) {
      const release = await api.getRelease(app, version);
      for (const key of COMMAND_KEYS) {
        const run = release[key];
        if (!run) continue;
        let followed = commands.get(key);
        if (!followed) {
          progress(`Running the ${key} in machine ${run.machine_id}\n`);
          const stop = new AbortController();
          const output = new CommandOutput(api, app, run.machine_id, progress);
          followed = { stop, done: output.stream(stop.signal), output, ended: false };
          commands.set(key, followed);
        }
        if (!followed.ended && (run.exit_code !== null || run.error)) {
          followed.ended = true;
          // Give the last lines a moment to arrive, then stop following.
          await sleep(500);
          followed.stop.abort();
          await followed.done;
          await followed.output.rest();
          progress(run.error ? `${key} ${run.error}\n` : `${key} exited with code ${run.exit_code}\n`);
        }
      }
      const ended = await step(release);
      if (ended) return ended;
      await sleep(opts.pollMs ?? 500, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  } finally {
    for (const followed of commands.values()) followed.stop.abort();
  }

  async function step(release: Release): Promise<Release | undefined> {
    if (release.status !== status) {
      status = release.status;
      if (status === "running")
        progress(`Release v${version} is rolling out (${release.strategy ?? "rolling"})\n`);
      if (status === "rolling_back")
        progress(
          `Release v${version} failed: ${release.reason ?? "unknown"}; returning to the previous release\n`,
        );
    }
    const machines = await api.listMachines(app).catch(() => [] as Machine[]);
    const now = new Set<string>();
    for (const m of machines) {
      now.add(m.id);
      const what = describe(m);
      const tag = m.config?.metadata?.hangar_release;
      const before = seen.get(m.id);
      if (before === undefined && tag === String(version))
        progress(`Machine ${m.id} (v${version}): ${what}\n`);
      else if (
        before !== undefined &&
        before !== what &&
        (what.startsWith("started, checks passing") || m.state === "destroyed" || m.state === "failed")
      )
        progress(`Machine ${m.id}${tag ? ` (v${tag})` : ""}: ${what}\n`);
      seen.set(m.id, what);
    }
    for (const id of seen.keys()) if (!now.has(id)) seen.delete(id);
    return ENDED.has(release.status) ? release : undefined;
  }
}

/** One machine's output, printed once per line (by its sequence number) whether it came live or from a later read. */
class CommandOutput {
  private last = 0;
  constructor(
    private readonly api: Pick<ApiClient, "appLogs">,
    private readonly app: string,
    private readonly machine: string,
    private readonly progress: (text: string) => void,
  ) {}

  /** Prints its lines as they come, until `signal` aborts. */
  async stream(signal: AbortSignal): Promise<void> {
    await this.read(true, signal);
  }

  /** Prints the lines the machine's host still has that were not printed yet (a line can race the live stream). */
  async rest(): Promise<void> {
    await this.read(false);
  }

  private async read(follow: boolean, signal?: AbortSignal): Promise<void> {
    try {
      for await (const entry of this.api.appLogs(this.app, {
        machine: this.machine,
        follow,
        ...(signal ? { signal } : {}),
      })) {
        const seq = entry.meta?.seq ?? 0;
        if (seq !== 0 && seq <= this.last) continue;
        this.last = Math.max(this.last, seq);
        this.progress(`  ${formatLogEntry(entry)}\n`);
      }
    } catch {
      // Aborted, or the logs are unavailable: the outcome is printed either way.
    }
  }
}
