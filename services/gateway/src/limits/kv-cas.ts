import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

/** An org slug as one KV key token: as it is when KV keys can hold it, else `x` + its hex. */
export function orgKeyToken(org: string): string {
  return /^[A-Za-z0-9_-]+$/.test(org) ? org : `x${Buffer.from(org).toString("hex")}`;
}

/** Whether a KV create or update failed because the key's revision moved on: re-read and try again. */
export function isLostCas(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
