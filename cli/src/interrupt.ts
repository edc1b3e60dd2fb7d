/**
 * Runs a read the user ends with Ctrl-C (SIGINT) or SIGTERM: `read` gets a signal those abort, and
 * the abort it ends with is the normal end, not an error.
 */
export async function readUntilInterrupted(read: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await read(stop.signal);
  } catch (err) {
    if (!(err instanceof Error && err.name === "AbortError")) throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
