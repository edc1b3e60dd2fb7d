/**
 * The isolate prelude (./isolate/prelude.ts and the polyfills it imports) bundled by esbuild into one
 * script, once per process. From dist/ it bundles the compiled ./isolate/prelude.js, from src/ (tsx,
 * vitest) the TypeScript; both sit next to this module (a service's bundle imports @hangar/edge from
 * its dist: scripts/bundle.ts). Each app's isolate compiles it from V8's code cache (edgePreludeCache)
 * and runs it. (ivm.Isolate.createSnapshot would save running it too, but isolated-vm 5.0.4's
 * snapshots lose one-character names: a global `o` reads back as another string, a closure's `Z` is
 * "not defined"; docs/edge.md.)
 */

/** The prelude's file name in stack traces. */
export const PRELUDE_FILENAME = "edge-prelude.js";

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import ivm from "isolated-vm";

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

let compiled: Promise<ivm.ExternalCopy<ArrayBuffer>> | undefined;

/**
 * V8's code cache of the prelude, made once per process in a throwaway isolate: an app's isolate
 * compiles the prelude from it in about a millisecond instead of parsing 400 KB.
 */
export function edgePreludeCache(): Promise<ivm.ExternalCopy<ArrayBuffer>> {
  compiled ??= edgePrelude()
    .then(async (code) => {
      const isolate = new ivm.Isolate();
      try {
        // isolated-vm's types leave out the cachedData that produceCachedData sets.
        const script = (await isolate.compileScript(code, {
          filename: PRELUDE_FILENAME,
          produceCachedData: true,
        })) as ivm.Script & ivm.CachedDataResult;
        if (script.cachedData === undefined) throw new Error("V8 gave no code cache for the prelude");
        return script.cachedData;
      } finally {
        isolate.dispose();
      }
    })
    .catch((error: unknown) => {
      compiled = undefined;
      throw error;
    });
  return compiled;
}
