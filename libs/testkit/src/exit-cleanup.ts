// A crashed test runner never reaches its teardown, so every started server registers a synchronous
// cleanup here ("exit" listeners cannot await) that kills its process and deletes its temp dirs.
const cleanups = new Set<() => void>();

function runCleanups(): void {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // Best effort: the process is going away and the other cleanups must still run.
    }
  }
  cleanups.clear();
}

process.on("exit", runCleanups);

// A signal's default action ends the process without an "exit" event, and vitest stops its fork workers
// with SIGTERM. When nobody else handles the signal, clean up and re-raise it so the process still dies
// of it; when someone does, they own shutdown and "exit" covers us if they exit.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  const onSignal = () => {
    if (process.listenerCount(signal) > 1) return;
    runCleanups();
    process.off(signal, onSignal);
    process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

/** Runs `cleanup` if the process exits or is killed by a signal before the returned function is called. */
export function cleanupOnExit(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => {
    cleanups.delete(cleanup);
  };
}
