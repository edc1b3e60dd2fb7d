/** A VM size preset: its CPU kind, CPU count and memory, and its GPU if it has one. */
export interface VmSize {
  cpu_kind: "shared" | "performance";
  cpus: number;
  memory_mb: number;
  gpus?: number;
  gpu_kind?: string;
}

/** The size flyctl gives a [[vm]] without `size` (fly-go's DefaultVMSize). */
export const DEFAULT_VM_SIZE = "shared-cpu-1x";
/** The size flyctl gives a [[vm]] with a `gpu_kind` and no `size` (fly-go's DefaultGPUVMSize). */
export const DEFAULT_GPU_VM_SIZE = "performance-8x";

const MB_PER_SHARED_CPU = 256;
const MB_PER_PERFORMANCE_CPU = 2048;

function shared(cpus: number): VmSize {
  return { cpu_kind: "shared", cpus, memory_mb: cpus * MB_PER_SHARED_CPU };
}
function performance(cpus: number): VmSize {
  return { cpu_kind: "performance", cpus, memory_mb: cpus * MB_PER_PERFORMANCE_CPU };
}
function gpu(gpu_kind: string): VmSize {
  return { ...performance(8), memory_mb: 16 * MB_PER_PERFORMANCE_CPU, gpus: 1, gpu_kind };
}

/** Every VM size flyctl knows (fly-go's MachinePresets) and the guest each stands for. */
export const VM_SIZES: Readonly<Record<string, VmSize>> = {
  "shared-cpu-1x": shared(1),
  "shared-cpu-2x": shared(2),
  "shared-cpu-4x": shared(4),
  "shared-cpu-6x": shared(6),
  "shared-cpu-8x": shared(8),
  "performance-1x": performance(1),
  "performance-2x": performance(2),
  "performance-4x": performance(4),
  "performance-6x": performance(6),
  "performance-8x": performance(8),
  "performance-10x": performance(10),
  "performance-12x": performance(12),
  "performance-14x": performance(14),
  "performance-16x": performance(16),
  "a100-40gb": gpu("a100-pcie-40gb"),
  "a100-80gb": gpu("a100-sxm4-80gb"),
  l40s: gpu("l40s"),
  a10: gpu("a10"),
};

/** The VM sizes without a GPU: what a Postgres cluster's members may be (as `fly postgres create` offers). */
export const CPU_VM_SIZES: Readonly<Record<string, VmSize>> = Object.fromEntries(
  Object.entries(VM_SIZES).filter(([, size]) => size.gpus === undefined),
);

const BINARY_UNIT: Record<string, number> = {
  "": 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
};

/** A memory size flyctl accepts: a whole number of MB, or a size such as "512mb", "1gb", "4G" or "2GiB". */
export const MEMORY_SIZE = /^\s*(\d+(?:\.\d+)?) ?([kmgtp])?i?b?\s*$/i;

/**
 * Memory as fly.toml writes it, in MB, as flyctl reads it: a whole number is MB, else a size with binary
 * units ("1gb" is 1024 MB; a size without a unit is in bytes).
 */
export function parseMemoryMb(memory: string | number): number {
  if (typeof memory === "number") return memory;
  if (/^[+-]?\d+$/.test(memory)) return Number(memory);
  const m = MEMORY_SIZE.exec(memory);
  if (!m) throw new RangeError(`invalid memory size "${memory}": expected e.g. "512mb" or "1gb"`);
  const bytes = Number(m[1]) * (BINARY_UNIT[(m[2] ?? "").toLowerCase()] as number);
  return Math.floor(bytes / 2 ** 20);
}
