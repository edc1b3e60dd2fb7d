/**
 * The isolate prelude (./isolate/prelude.ts and the polyfills it imports) bundled by esbuild into one
 * script, once per process. From dist/ it bundles the compiled ./isolate/prelude.js, from src/ (tsx,
 * vitest) the TypeScript; both sit next to this module (a service's bundle imports @hangar/edge from
 * its dist: scripts/bundle.ts).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

let built: Promise<string> | undefined;

async function bundlePrelude(): Promise<string> {
  const entry = ["./isolate/prelude.js", "./isolate/prelude.ts"]
    .map((file) => fileURLToPath(new URL(file, import.meta.url)))
    .find((file) => existsSync(file));
  if (entry === undefined)
    throw new Error("the edge runtime's isolate prelude is missing next to prelude.js");
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "iife",
    platform: "neutral",
    mainFields: ["module", "main"],
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  const script = result.outputFiles[0]?.text;
  if (script === undefined) throw new Error("esbuild gave no prelude");
  return script;
}

/** The prelude script: the web platform and the app's API for a bare V8 isolate. */
export function edgePrelude(): Promise<string> {
  built ??= bundlePrelude().catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  return built;
}
