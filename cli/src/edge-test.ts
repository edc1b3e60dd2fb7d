/**
 * `hangar edge test`: an edge app's test files (`*.test.js` / `*.test.mjs` in its folder) run in this
 * process against the app's bundle in a real edge runtime. A test file sees these globals:
 *
 * - `test(name, fn)`: a test; `fn` may be async and fails by throwing (node:assert);
 * - `dispatch(request | url, init?)`: the app's answer (a Response) to a request (a path alone is
 *   sent to `http://<app>.test<path>`); a failure of the code (CPU limit, uncaught error) answers as
 *   the proxy would, `{"error","status"}` with its status;
 * - `deploy(vars?, { appEnv }?)`: loads the bundle again, fresh, with `vars` added to [env] as `env`
 *   (origins the test started, say) and `app.env` (default "development");
 * - `after(fn)`: runs when the file's tests are done (close servers).
 *
 * Files run one after another, each with the bundle loaded fresh.
 */
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import type { EdgeAppEnv, EdgeBundle, EdgeRuntime } from "@hangar/edge";
import type { EdgeAppDir } from "./edge-app.js";
import { dispatchOrError, fromWebRequest, toWebResponse } from "./edge-http.js";

/** One test's outcome. */
export interface EdgeTestResult {
  file: string;
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

/** The globals a test file sees. */
interface TestGlobals {
  test(name: string, fn: () => unknown): void;
  dispatch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  deploy(vars?: Record<string, string>, options?: { appEnv?: EdgeAppEnv["appEnv"] }): Promise<void>;
  after(fn: () => unknown): void;
}

const GLOBAL_NAMES = ["test", "dispatch", "deploy", "after"] as const;
const TEST_FILE = /\.test\.m?js$/;
const SKIPPED_DIRS = new Set(["node_modules", ".git"]);

/** The app's test files, in path order. */
export async function findTestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && TEST_FILE.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .filter(
      (file) =>
        !relative(dir, file)
          .split("/")
          .some((part) => SKIPPED_DIRS.has(part)),
    )
    .sort();
}

function messageOf(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Rejects after `ms` unless `work` settles first. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface EdgeTestOptions {
  app: EdgeAppDir;
  bundle: EdgeBundle;
  runtime: EdgeRuntime;
  files: string[];
  timeoutMs: number;
  /** Called as each test ends (the command prints it). */
  onResult(result: EdgeTestResult): void;
}

/** Runs each file's tests in turn; resolves every test's outcome (a file that fails to load is one failed test). */
export async function runEdgeTests(options: EdgeTestOptions): Promise<EdgeTestResult[]> {
  const { app, bundle, runtime } = options;
  const results: EdgeTestResult[] = [];
  const record = (result: EdgeTestResult) => {
    results.push(result);
    options.onResult(result);
  };
  const scope = globalThis as unknown as Record<string, unknown>;
  const saved = GLOBAL_NAMES.map((name) => [name, scope[name]] as const);
  let run = 0;
  try {
    for (const file of options.files) {
      const shown = relative(app.dir, file);
      const tests: { name: string; fn: () => unknown }[] = [];
      const afters: (() => unknown)[] = [];
      const deploy: TestGlobals["deploy"] = (vars = {}, deployOptions = {}) =>
        runtime.deploy(
          app.app,
          bundle,
          { appEnv: deployOptions.appEnv ?? "development", vars: { ...app.vars, ...vars } },
          app.limits,
        );
      const globals: TestGlobals = {
        test: (name, fn) => {
          tests.push({ name, fn });
        },
        dispatch: async (input, init) =>
          toWebResponse(await dispatchOrError(runtime, app.app, await fromWebRequest(app.app, input, init))),
        deploy,
        after: (fn) => {
          afters.push(fn);
        },
      };
      Object.assign(scope, globals);
      const started = Date.now();
      try {
        await deploy();
        // A query of its own each run, so a file imported again (hangar edge dev, a second run) runs again.
        run += 1;
        await within(
          import(`${pathToFileURL(file).href}?run=${Date.now()}-${run}`),
          options.timeoutMs,
          `loading ${shown}`,
        );
      } catch (err) {
        record({
          file: shown,
          name: "(loading the file)",
          ok: false,
          ms: Date.now() - started,
          error: messageOf(err),
        });
      }
      for (const { name, fn } of tests) {
        const begun = Date.now();
        try {
          await within(Promise.resolve().then(fn), options.timeoutMs, `test "${name}"`);
          record({ file: shown, name, ok: true, ms: Date.now() - begun });
        } catch (err) {
          record({ file: shown, name, ok: false, ms: Date.now() - begun, error: messageOf(err) });
        }
      }
      for (const fn of afters.reverse()) {
        try {
          await within(Promise.resolve().then(fn), options.timeoutMs, "an after() hook");
        } catch (err) {
          record({ file: shown, name: "(after)", ok: false, ms: 0, error: messageOf(err) });
        }
      }
    }
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete scope[name];
      else scope[name] = value;
    }
  }
  return results;
}
