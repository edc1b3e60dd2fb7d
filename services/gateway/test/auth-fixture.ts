// Tokens for tests of the API with fake backends: a random root key, an operator token, and a
// directory in which every app is in one org, so the backend under test answers what the token allows.
import { randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import type { TokenAuth } from "../src/http/auth.js";

/** A TokenAuth whose directory puts every app in `org` (default "personal"), and an operator token for it. */
export function testAuth(org = "personal"): { auth: TokenAuth; token: string; key: Uint8Array } {
  const key = new Uint8Array(randomBytes(32));
  const auth: TokenAuth = {
    key,
    directory: { orgOf: () => org, exists: (o) => o === org, limitsOf: () => ({}) },
    isRevoked: () => false,
  };
  return { auth, token: mintToken(key, { id: "tok_test", kind: "operator" }), key };
}
