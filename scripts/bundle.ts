// Bundles each service's and the CLI's compiled entry (dist/main.js, from `tsc --build`) into one
// ESM file with its dependencies: services/<name>/bundle/main.mjs and cli/bundle/main.mjs. A Node
// process loads one bundle in a third to a half of the time it takes to load the same code as some
// 900 modules from node_modules (a service's start on this 2-core machine: ~0.65 s against ~1.5 s),
// which is most of a test platform's start. The tests run the bundles (HANGAR_RUN_FROM=dist, see
// scripts/platform.ts serviceArgv); images and `npm start` run dist/ and src/ as before.
//
//   node --conditions=source --import tsx scripts/bundle.ts     (after `pnpm build`)
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile, type Plugin } from "esbuild";
import { HANGAR_SERVICES } from "./service-connections.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

/**
 * Entry points besides main that a package starts as processes of their own, found next to its
 * main module (`new URL("./resolver-main.js", import.meta.url)`): bundled beside main.mjs under
 * the same name, so that lookup finds them.
 */
const EXTRA_ENTRIES: Record<string, Record<string, string>> = {
  "host-agent": { "resolver-main": "dist/dns/resolver-main.js" },
};

/**
 * Left to Node's own loading: esbuild finds its native binary next to its own package, and pg-native
 * is pg's optional binding, never installed.
 */
const EXTERNAL = ["esbuild", "pg-native"];

/**
 * Workspace packages that find files next to their own modules, imported from their compiled dist
 * by absolute path (a bundle is a local build artefact, never moved): @hangar/pg-member bundles its
 * member agent from the main module beside its own (bundle.ts); @hangar/edge bundles the isolates'
 * prelude from the files beside it and loads isolated-vm, a native addon, from its own node_modules.
 * Bundled, they would look beside the service's bundle.
 */
const IN_PLACE: Record<string, string> = {
  "@hangar/pg-member": join(repoRoot, "libs", "pg-member", "dist", "mod.js"),
  "@hangar/edge": join(repoRoot, "libs", "edge", "dist", "mod.js"),
};

const inPlace: Plugin = {
  name: "hangar-in-place",
  setup(b) {
    b.onResolve({ filter: /^@hangar\/(pg-member|edge)$/ }, (args) => ({
      path: IN_PLACE[args.path] as string,
      external: true,
    }));
  },
};

/** The packages bundled: every service and the CLI, as folders under the repository. */
export function bundledPackages(): string[] {
  return [...HANGAR_SERVICES.map((name) => join("services", name)), "cli"];
}

/**
 * Whether `outDir`'s bundle is newer than every file that went into it, as its metafile lists them
 * (paths relative to `pkgDir`), and than this script.
 */
async function upToDate(pkgDir: string, outDir: string): Promise<boolean> {
  try {
    const built = (await stat(join(outDir, "main.mjs"))).mtimeMs;
    const meta = JSON.parse(await readFile(join(outDir, "meta.json"), "utf8")) as Metafile;
    const inputs = [
      ...Object.keys(meta.inputs).map((file) => join(pkgDir, file)),
      fileURLToPath(import.meta.url),
    ];
    for (const file of inputs) if ((await stat(file)).mtimeMs > built) return false;
    return true;
  } catch {
    return false;
  }
}

/**
 * Bundles every package's dist into its bundle/ folder, but for those whose bundle is newer than all
 * its inputs; throws with esbuild's errors. Returns the packages bundled.
 */
export async function bundleAll(): Promise<string[]> {
  const bundled: string[] = [];
  await Promise.all(
    bundledPackages().map(async (dir) => {
      const pkgDir = join(repoRoot, dir);
      const outDir = join(pkgDir, "bundle");
      const main = join(pkgDir, "dist", "main.js");
      if (!existsSync(main)) throw new Error(`${main} is missing: run \`pnpm build\` first`);
      if (await upToDate(pkgDir, outDir)) return;
      const name = dir.split("/").at(-1) as string;
      const entryPoints: Record<string, string> = { main };
      for (const [out, file] of Object.entries(EXTRA_ENTRIES[name] ?? {}))
        entryPoints[out] = join(pkgDir, file);
      const result = await build({
        entryPoints,
        absWorkingDir: pkgDir,
        outdir: join(pkgDir, "bundle"),
        outExtension: { ".js": ".mjs" },
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node20",
        external: EXTERNAL,
        plugins: [inPlace],
        // CommonJS dependencies call require() for Node's modules: give the ESM bundle one.
        banner: {
          js: "import { createRequire as __hangarRequire } from 'node:module'; const require = __hangarRequire(import.meta.url);",
        },
        legalComments: "none",
        sourcemap: false,
        metafile: true,
        logLevel: "error",
      });
      await writeFile(join(outDir, "meta.json"), JSON.stringify(result.metafile));
      bundled.push(dir);
    }),
  );
  return bundled;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const bundled = await bundleAll();
  console.log(
    `bundled ${bundled.length} of ${bundledPackages().length} packages (the others were up to date) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}
