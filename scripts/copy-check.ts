// The copy-paste check in `npm test`: jscpd over services/ and libs/ with .jscpd.json (the
// duplication threshold is there; docs/checks.md says why), plus the rule jscpd cannot express:
// no block copied between two services. What two services share belongs in a library.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

interface Clone {
  firstFile: { name: string; start: number; end: number };
  secondFile: { name: string; start: number; end: number };
}

/** The service a file belongs to (`services/<name>/...`), or undefined for a library. */
export function serviceOf(file: string): string | undefined {
  return /^services\/([^/]+)\//.exec(file)?.[1];
}

/** The clones whose two blocks are in two different services. */
export function crossServiceClones(clones: Clone[]): Clone[] {
  return clones.filter((c) => {
    const a = serviceOf(c.firstFile.name);
    const b = serviceOf(c.secondFile.name);
    return a !== undefined && b !== undefined && a !== b;
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const out = mkdtempSync(join(tmpdir(), "hangar-jscpd-"));
  try {
    const jscpd = spawnSync(
      join(root, "node_modules", ".bin", "jscpd"),
      ["--config", ".jscpd.json", "--reporters", "console,json", "--output", out, "--absolute"],
      { cwd: root, stdio: ["ignore", "inherit", "inherit"] },
    );
    if (jscpd.error) {
      process.stderr.write(`copy check: cannot run jscpd (${jscpd.error.message}): run pnpm install\n`);
      process.exit(1);
    }
    if (jscpd.status !== 0) {
      process.stderr.write(
        `copy check: jscpd failed (exit ${jscpd.status}): duplication above .jscpd.json's threshold\n`,
      );
      process.exit(1);
    }
    const report = JSON.parse(readFileSync(join(out, "jscpd-report.json"), "utf8")) as {
      duplicates: Clone[];
    };
    const clones = report.duplicates.map((c) => ({
      firstFile: { ...c.firstFile, name: relative(root, c.firstFile.name) },
      secondFile: { ...c.secondFile, name: relative(root, c.secondFile.name) },
    }));
    const across = crossServiceClones(clones);
    for (const c of across) {
      process.stderr.write(
        `copied between services: ${c.firstFile.name}:${c.firstFile.start}-${c.firstFile.end} and ${c.secondFile.name}:${c.secondFile.start}-${c.secondFile.end}\n`,
      );
    }
    if (across.length > 0) {
      process.stderr.write("copy check: move what two services share into a library (libs/)\n");
      process.exit(1);
    }
    process.stdout.write("copy check: no block copied between two services\n");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
