import { setTimeout as sleep } from "node:timers/promises";
import type { ApiClient } from "./api.js";
import type { Machine, Release } from "./types.js";

const ENDED = new Set(["succeeded", "failed"]);

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
  api: Pick<ApiClient, "getRelease" | "listMachines">,
  app: string,
  version: number,
  progress: (text: string) => void,
  opts: { pollMs?: number; signal?: AbortSignal } = {},
): Promise<Release> {
  let status = "";
  const seen = new Map<string, string>();
  for (;;) {
    const release = await api.getRelease(app, version);
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
    if (ENDED.has(release.status)) return release;
    await sleep(opts.pollMs ?? 500, undefined, opts.signal ? { signal: opts.signal } : undefined);
  }
}
