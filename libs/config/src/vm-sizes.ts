/** A VM size preset: its CPU kind, CPU count and memory. */
export interface VmSize {
  cpu_kind: "shared" | "performance";
  cpus: number;
  memory_mb: number;
}

/** Fly's VM size names and the guest each stands for (smallest memory of the preset). */
export const VM_SIZES: Readonly<Record<string, VmSize>> = {
  "shared-cpu-1x": { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
  "shared-cpu-2x": { cpu_kind: "shared", cpus: 2, memory_mb: 512 },
  "shared-cpu-4x": { cpu_kind: "shared", cpus: 4, memory_mb: 1024 },
  "shared-cpu-8x": { cpu_kind: "shared", cpus: 8, memory_mb: 2048 },
  "performance-1x": { cpu_kind: "performance", cpus: 1, memory_mb: 2048 },
  "performance-2x": { cpu_kind: "performance", cpus: 2, memory_mb: 4096 },
  "performance-4x": { cpu_kind: "performance", cpus: 4, memory_mb: 8192 },
  "performance-8x": { cpu_kind: "performance", cpus: 8, memory_mb: 16384 },
  "performance-16x": { cpu_kind: "performance", cpus: 16, memory_mb: 32768 },
};

/** Memory as fly.toml writes it ("512mb", "1gb", "2g", "1024", or a number of MB) in MB. */
export function parseMemoryMb(memory: string | number): number {
  if (typeof memory === "number") return memory;
  const m = /^(\d+(?:\.\d+)?)\s*(mb|gb|m|g)?$/i.exec(memory.trim());
  if (!m) throw new RangeError(`invalid memory size "${memory}": expected e.g. "512mb" or "1gb"`);
  const amount = Number(m[1]);
  const gb = (m[2] ?? "mb").toLowerCase().startsWith("g");
  return Math.round(gb ? amount * 1024 : amount);
}
