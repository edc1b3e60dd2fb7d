// Issue 14's acceptance 3 in CI: three corpus entries (tests/images/corpus) built with Hangar's
// builder and with buildah from the same bases agree on their runtime config and on every file
// (tests/images/compare.ts says how): a Debian base with the BuildKit features the corpus uses, a
// Debian base whose RUN installs packages from deb.debian.org, and the postgres base with an init
// script. The bench (`pnpm bench build`) builds the whole corpus.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agrees, type Comparison, describeComparison, type ImageComparer, openComparer } from "./compare.js";

const CI_ENTRIES = ["debian-buildkit-features", "debian-apt-curl", "postgres-initdb"];
const ENTRY_TIMEOUT_MS = 300_000;

let comparer: ImageComparer;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ comparer, close } = await openComparer());
}, 60_000);

afterAll(() => close?.(), 60_000);

describe("the corpus built by Hangar and by buildah", () => {
  it.each(CI_ENTRIES)(
    "%s: same Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts and files",
    async (entry) => {
      const result: Comparison = await comparer.compare(entry, { concurrently: true });
      expect(agrees(result), describeComparison(result)).toBe(true);
      expect(result.filesCompared).toBeGreaterThan(1000);
    },
    ENTRY_TIMEOUT_MS,
  );
});
