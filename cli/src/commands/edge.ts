import { Console } from "node:console";
import { resolve } from "node:path";
import type { EdgeLogLine } from "@hangar/edge";
import { type Command, InvalidArgumentError } from "commander";
import { CliError, ExitStatus } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { bundleApp, readEdgeApp, startRuntime } from "../edge-app.js";
import { startEdgeDev } from "../edge-dev.js";
import { type EdgeTestResult, findTestFiles, runEdgeTests } from "../edge-test.js";

interface TestFlags {
  json?: boolean;
  timeout: number;
}

interface DevFlags {
  port: number;
  bind: string;
}

/** A local port; 0 takes a free one (the server says which). */
function localPort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError("expected a port, 0-65535");
  return n;
}

function positiveMs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError("expected a whole number of ms, at least 1");
  return n;
}

const logLine = (line: EdgeLogLine) => `[${line.app}] ${line.level}: ${line.message}\n`;

function firstLine(text: string): string {
  return text.split("\n")[0] ?? text;
}

async function edgeTest(ctx: Context, dir: string, flags: TestFlags): Promise<void> {
  const app = await readEdgeApp(resolve(ctx.cwd, dir));
  const files = await findTestFiles(app.dir);
  if (files.length === 0) throw new CliError(`no test files (*.test.js, *.test.mjs) in ${app.dir}`);
  const { bundle, warnings } = await bundleApp(app);
  for (const warning of warnings) ctx.err(`warning: ${warning}\n`);
  // With --json, stdout holds only the result; the app's console lines go to stderr.
  const runtime = startRuntime((line) => (flags.json ? ctx.err : ctx.out)(logLine(line)));
  let results: EdgeTestResult[];
  // With --json the tests' own console output goes to stderr too, leaving stdout to the result.
  const console = globalThis.console;
  if (flags.json) globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
  try {
    results = await runEdgeTests({
      app,
      bundle,
      runtime,
      files,
      timeoutMs: flags.timeout,
      onResult: (r) => {
        if (flags.json) return;
        ctx.out(`${r.ok ? "ok  " : "FAIL"} ${r.file} > ${r.name} (${r.ms} ms)\n`);
        if (r.error) ctx.out(`${r.error.replace(/^/gm, "     ")}\n`);
      },
    });
  } finally {
    globalThis.console = console;
    await runtime.dispose();
  }
  const failed = results.filter((r) => !r.ok);
  if (flags.json) {
    printJson(ctx, {
      app: app.app,
      digest: bundle.digest,
      passed: results.length - failed.length,
      failed: failed.length,
      tests: results,
    });
  } else {
    ctx.out(
      `${results.length - failed.length} passed, ${failed.length} failed (${app.app}, ${bundle.digest.slice(0, 19)})\n`,
    );
    for (const f of failed) ctx.err(`failed: ${f.file} > ${f.name}: ${firstLine(f.error ?? "")}\n`);
  }
  if (failed.length > 0) throw new ExitStatus(1);
}

async function edgeDev(ctx: Context, dir: string, flags: DevFlags): Promise<void> {
  const app = await readEdgeApp(resolve(ctx.cwd, dir));
  const runtime = startRuntime((line) => ctx.out(logLine(line)));
  try {
    const dev = await startEdgeDev({
      app,
      runtime,
      port: flags.port,
      bind: flags.bind,
      out: ctx.out,
      err: ctx.err,
    }).catch((err: unknown) => {
      throw new CliError((err as Error).message);
    });
    ctx.out(`Serving ${app.app} on http://${flags.bind}:${dev.port} (reloads on change; Ctrl-C stops)\n`);
    await ctx.untilInterrupted();
    await dev.close();
  } finally {
    await runtime.dispose();
  }
}

export function registerEdge(program: Command, ctx: Context): void {
  const edge = program
    .command("edge")
    .description("Edge apps: JavaScript that runs in the proxies, in front of machines");
  edge
    .command("test")
    .description("Run an edge app's tests (*.test.js) against its bundle in the edge runtime")
    .argument("[dir]", "the app's folder", ".")
    .option("--json", "print the results as JSON")
    .option("--timeout <ms>", "longest a test (or a file's loading) may take", positiveMs, 30_000)
    .action((dir: string, flags: TestFlags) => edgeTest(ctx, dir, flags));
  edge
    .command("dev")
    .description("Serve an edge app locally with the edge runtime, reloading it when its files change")
    .argument("[dir]", "the app's folder", ".")
    .option("-p, --port <port>", "local port (0: a free one)", localPort, 3000)
    .option("--bind <address>", "address to listen on", "127.0.0.1")
    .action((dir: string, flags: DevFlags) => edgeDev(ctx, dir, flags));
}
