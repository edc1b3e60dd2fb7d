import { createHash } from "node:crypto";
import type { EdgeBundle } from "./contract.js";

/** The digest of an app's code as released: `sha256:<hex>` of its UTF-8. */
export function edgeDigest(code: string): string {
  return `sha256:${createHash("sha256").update(code, "utf8").digest("hex")}`;
}

/** A bundle of code that is already one ES module (the bundler's output, or a test's). */
export function edgeBundleOf(code: string): EdgeBundle {
  return { digest: edgeDigest(code), code };
}
