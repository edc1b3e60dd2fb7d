import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

// An org slug: the app-name rules (a DNS label), which a KV key token can hold as it is.
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * An org as one KV key token: a slug as it is, any other name (a free-text `org_slug` from before
 * orgs) `_` + its hex. No slug starts with `_`, so the two never meet: the former `x` + hex of
 * "my org" was `x6d79206f7267`, a slug anyone could create to share that org's budgets and blob usage.
 */
export function orgKeyToken(org: string): string {
  return SLUG.test(org) ? org : `_${Buffer.from(org).toString("hex")}`;
}

/** Whether a KV create or update failed because the key's revision moved on: re-read and try again. */
export function isLostCas(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
