/**
 * The edge bundler: an app's folder to one ES module (esbuild), its imports of the standard library
 * (libs/edge/stdlib, by the old runtime's names too) resolved to the library's files, and nothing of
 * Node: an edge app runs in a bare isolate. The result is an EdgeBundle, stored and released by its
 * digest like an image.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, formatMessages, type Message, type Plugin } from "esbuild";
import { edgeBundleOf } from "./bundle-code.js";
import type { EdgeBundle } from "./contract.js";

/** The standard library's folder (libs/edge/stdlib), beside src/ and dist/ alike. */
const STDLIB = fileURLToPath(new URL("../stdlib/", import.meta.url));

/** Import names of the standard library and the file each one is (libs/edge/stdlib/README.md). */
export const EDGE_STDLIB_IMPORTS: Readonly<Record<string, string>> = Object.freeze({
  "@hangar/edge-std": "index.ts",
  "@fly/fly": "index.ts",
  "@fly/proxy": "proxy.ts",
  "@fly/balancer": "balancer.ts",
  "@fly/mount": "mount.ts",
  "@fly/cache": "cache.ts",
  "@fly/image": "image.ts",
});

/** Files that are an app's entry when they exist, in order, after package.json's main. */
const ENTRY_CANDIDATES = [
  "index.ts",
  "index.js",
  "index.mjs",
  "src/index.ts",
  "src/index.js",
  "src/index.mjs",
];

const NODE_BUILTIN = /^node:/;

export interface BundleEdgeAppOptions {
  /** The entry module, relative to `dir`; default: what detectEdgeEntry finds. */
  entry?: string;
  /** Minify the code (default false: stack traces in `hangar logs` stay readable). */
  minify?: boolean;
}

export interface BundledEdgeApp {
  bundle: EdgeBundle;
  /** esbuild's warnings, formatted. */
  warnings: string[];
  /** The entry bundled, relative to `dir`. */
  entry: string;
}

/** Whether a module's source registers a handler: fly.http.respondWith, a fetch listener, or export default { fetch }. */
export function looksLikeEdgeEntry(source: string): boolean {
  if (/\bfly\s*\.\s*http\s*\.\s*respondWith\s*\(/.test(source)) return true;
  if (/\baddEventListener\s*\(\s*["'`]fetch["'`]/.test(source)) return true;
  return /\bexport\s+default\b/.test(source) && /\bfetch\s*(\(|:|,|\})/.test(source);
}

/**
 * An edge app's entry in `dir` (relative), if it has one: package.json's main, index.{ts,js,mjs} or
 * src/index.{ts,js,mjs}, the first that registers a handler (for `hangar launch`).
 */
export async function detectEdgeEntry(dir: string): Promise<string | undefined> {
  const candidates = [...ENTRY_CANDIDATES];
  try {
    const main = (JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { main?: unknown }).main;
    if (typeof main === "string") candidates.unshift(main.replace(/^\.\//, ""));
  } catch {
    // No package.json (or not JSON): the usual file names only.
  }
  for (const file of candidates) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    if (looksLikeEdgeEntry(await readFile(path, "utf8"))) return file;
  }
  return undefined;
}

const edgeImports: Plugin = {
  name: "hangar-edge-imports",
  setup(b) {
    b.onResolve({ filter: /^@(fly|hangar)\// }, (args) => {
      const file = EDGE_STDLIB_IMPORTS[args.path];
      if (file === undefined) return undefined;
      const path = join(STDLIB, file);
      if (!existsSync(path))
        return { errors: [{ text: `${args.path} is not in this version of the edge standard library` }] };
      return { path };
    });
    b.onResolve({ filter: NODE_BUILTIN }, (args) =>
      args.kind === "entry-point"
        ? undefined
        : {
            errors: [
              {
                text: `"${args.path}" is Node's: an edge app runs in a V8 isolate with the web platform only (fetch, Request, Response, URL, crypto.subtle, fly.cache)`,
              },
            ],
          },
    );
  },
};

async function formatted(messages: Message[], kind: "error" | "warning"): Promise<string[]> {
  return (await formatMessages(messages, { kind, color: false })).map((text) => text.trimEnd());
}

/** Bundles the app in `dir` into one ES module; throws with esbuild's errors when it cannot. */
export async function bundleEdgeApp(
  dir: string,
  options: BundleEdgeAppOptions = {},
): Promise<BundledEdgeApp> {
  const root = resolve(dir);
  const entry = options.entry ?? (await detectEdgeEntry(root));
  if (entry === undefined)
    throw new Error(
      `no edge entry in ${root}: none of package.json's main, ${ENTRY_CANDIDATES.join(", ")} calls fly.http.respondWith or has export default { fetch }`,
    );
  const entryPath = isAbsolute(entry) ? entry : join(root, entry);
  if (!existsSync(entryPath)) throw new Error(`the edge entry ${entryPath} does not exist`);
  const result = await build({
    entryPoints: [entryPath],
    absWorkingDir: root,
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    mainFields: ["browser", "module", "main"],
    conditions: ["worker", "browser"],
    target: "es2022",
    minify: options.minify ?? false,
    legalComments: "none",
    charset: "utf8",
    logLevel: "silent",
    plugins: [edgeImports],
  }).catch(async (error: { errors?: Message[] }) => {
    const lines = error.errors ? await formatted(error.errors, "error") : [String(error)];
    throw new Error(`bundling the edge app in ${root} failed:\n${lines.join("\n")}`);
  });
  const code = result.outputFiles[0]?.text;
  if (code === undefined) throw new Error(`esbuild gave no output for ${entryPath}`);
  return {
    bundle: edgeBundleOf(code),
    warnings: await formatted(result.warnings, "warning"),
    entry: relative(root, entryPath),
  };
}
