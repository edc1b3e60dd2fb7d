// Changing a machine's config as `hangar scale vm` and `hangar machine update` do: the size named as
// flyctl names it, the guest of a VM size, and an update that waits for a running machine to run again.
import { VM_SIZES } from "@hangar/config";
import type { ApiClient } from "./api.js";
import { CliError } from "./cli-error.js";
import type { Machine, MachineConfig, MachineGuest } from "./types.js";
import { waitForState } from "./wait.js";

/** A guest's size as flyctl's ToSize names it: the GPU kind, else shared-cpu-Nx or performance-Nx. */
export function sizeName(guest: (MachineGuest & { gpu_kind?: string | null }) | undefined): string {
  if (guest?.gpu_kind) return guest.gpu_kind;
  const kind = guest?.cpu_kind === "performance" ? "performance" : "shared-cpu";
  return `${kind}-${guest?.cpus ?? 1}x`;
}

/**
 * The guest of `size` (a name of the VM size table flyctl uses), with `memoryMb` when given, keeping
 * the other guest fields of `current` (kernel_args, host_dedication_id); GPU fields follow the size.
 */
export function guestOfSize(
  size: string | undefined,
  memoryMb: number | undefined,
  current: Record<string, unknown> = {},
): Record<string, unknown> {
  let guest: Record<string, unknown> = { ...current };
  if (size !== undefined) {
    const preset = VM_SIZES[size];
    if (!preset) {
      throw new CliError(`${size} is not a VM size`, `use one of: ${Object.keys(VM_SIZES).join(", ")}`);
    }
    const { gpus: _gpus, gpu_kind: _gpuKind, ...rest } = guest;
    guest = { ...rest, ...preset };
  }
  if (memoryMb !== undefined) guest.memory_mb = memoryMb;
  return guest;
}

/**
 * Replaces the machine's config (POST machine), then, if it was started, waits until the new
 * instance is started again; `progress` gets "<state>\n" or "failed\n" to end its line.
 */
export async function updateAndWait(
  api: ApiClient,
  app: string,
  m: Machine,
  config: MachineConfig,
  timeoutSeconds: number,
  progress: (text: string) => void,
): Promise<Machine> {
  const updated = await api.updateMachine(app, m.id, {
    ...(m.name ? { name: m.name } : {}),
    ...(m.region ? { region: m.region } : {}),
    config,
  });
  if (m.state !== "started") {
    progress(`${updated.state ?? "updated"}\n`);
    return updated;
  }
  try {
    await waitForState(api, app, m.id, "started", timeoutSeconds, updated.instance_id);
  } catch (err) {
    progress("failed\n");
    throw err;
  }
  progress("started\n");
  return updated;
}
