/**
 * isolated-vm on Node 20 and later needs Node started with --no-node-snapshot (its README): an isolate
 * made beside Node's own startup snapshot can crash the process. The proxy's and the CLI's argv carry
 * it (scripts/platform.ts serviceArgv, cli/bin/hangar, the vitest workers).
 */
export const NODE_FLAG = "--no-node-snapshot";

/** Throws, saying what to do, unless this process was started with --no-node-snapshot. */
export function assertIsolateFlags(): void {
  const options = (process.env.NODE_OPTIONS ?? "").split(/\s+/);
  if (process.execArgv.includes(NODE_FLAG) || options.includes(NODE_FLAG)) return;
  throw new Error(
    `the edge runtime (isolated-vm) needs Node started with ${NODE_FLAG}: run node ${NODE_FLAG} ..., or set NODE_OPTIONS=${NODE_FLAG}`,
  );
}
