import type { RequestContext } from "./backend.js";

/** Whose secrets: an app's (injected into its machines) or an org's (for the platform's own use). */
export type SecretScope = { kind: "app"; name: string } | { kind: "org"; name: string };

/** One secret as `GET .../secrets` shows it: never its value. */
export interface SecretView {
  name: string;
  /** The digest of the value machines get (or, for a staged change, of the staged value); null for a staged unset. */
  digest: string | null;
  /** "deployed": machines get it at their next start; "staged" / "unset_staged": waiting for a deploy. */
  status: "deployed" | "staged" | "unset_staged";
  created_at: string;
  updated_at: string;
}

/** The answer of a list or an update: the scope's secrets and the deployed version. */
export interface SecretsListing {
  secrets: SecretView[];
  version: number;
}

/** An update: values to set, null values to unset; staged ones wait for the next deploy. */
export interface SecretsUpdate {
  values: Record<string, string | null>;
  stage: boolean;
}

/** What the secrets API needs from the platform; failures are ApiErrors. */
export interface SecretsBackend {
  list(scope: SecretScope): SecretsListing;
  /** Sets and unsets; with no values and `stage` false, deploys what is staged. */
  update(scope: SecretScope, update: SecretsUpdate, ctx: RequestContext): Promise<SecretsListing>;
  /** Unsets one deployed secret at once; 404 when it has none of that name. */
  unset(scope: SecretScope, name: string, ctx: RequestContext): Promise<{ version: number }>;
}
