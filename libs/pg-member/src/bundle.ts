import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * Bundles the member agent (src/main, with pg) into one ESM file for Node 20 at `outFile` and returns
 * its sha256 (hex). The output depends only on the sources: no timestamps, no absolute paths.
 */
export async function bundleMemberAgent(outFile: string): Promise<string> {
  // The sibling main of this module: main.ts when run from source, main.js from dist.
  const entry = fileURLToPath(new URL(`./main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
  await build({
    entryPoints: [entry],
    // Paths in the bundle's comments are relative to the package, so any checkout bundles the same bytes.
    absWorkingDir: fileURLToPath(new URL("..", import.meta.url)),
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // pg's optional native binding is never used.
    external: ["pg-native"],
    // CommonJS dependencies (pg) call require() for Node's modules: give the ESM bundle one.
    banner: {
      js: "import { createRequire as __hangarRequire } from 'node:module'; const require = __hangarRequire(import.meta.url);",
    },
    legalComments: "none",
    sourcemap: false,
    minify: false,
    logLevel: "silent",
  });
  return createHash("sha256")
    .update(await readFile(outFile))
    .digest("hex");
}
