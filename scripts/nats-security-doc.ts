// docs/nats-security.md with its permission table generated from libs/service's table, as biome
// formats it: `scripts/nats-security.ts docs` writes it, tests/config/nats-security-doc.test.ts checks it.
import { join } from "node:path";
import { withPermissionsMarkdown } from "@hangar/service";
import { formatMarkdown } from "./format-markdown.js";
import { repoRoot } from "./platform.js";

/** Where the page lives. */
export const NATS_SECURITY_DOC = join(repoRoot, "docs", "nats-security.md");

/** The page `doc` with its generated block rewritten from the code's table. */
export function natsSecurityDoc(doc: string): string {
  return formatMarkdown(withPermissionsMarkdown(doc), NATS_SECURITY_DOC);
}
