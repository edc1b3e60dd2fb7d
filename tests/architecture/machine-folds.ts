import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

/** A place where a module folds machine events itself instead of reading MachinesView. */
export interface MachineFold {
  file: string;
  line: number;
  rule: "evolves-machines" | "reads-machines-stream" | "indexes-machines-by-app-or-host";
  code: string;
}

/** The one module allowed to fold MACHINES into collections, and the decider it folds with. */
const ALLOWED = new Set(["libs/service/src/machines-view.ts", "libs/domain/src/machines/machine.ts"]);

/** Calls that fold a stream (or a decider's events) into state when given the machine stream or decider. */
const FOLDING_CALLS = new Set([
  "AggregateView.start",
  "AggregateView.create",
  "replay",
  "fold",
  "OrderedReader.start",
  "runProjection",
  "runPostgresProjection",
]);

/** Type names that mark a function as receiving machine changes. */
const MACHINE_CHANGE_TYPES = /\b(MachineChange|ViewChange<\s*MachineState)\b/;

/** Keys that make a collection per app or per host. */
const GROUP_KEYS = new Set(["app", "hostId"]);

/**
 * Finds the folds of machine events in one source file. In code terms, a module folds machine
 * events when it:
 * - calls `machineDecider.evolve`, or passes `machineDecider` or `machinesStream` to a call that
 *   folds a stream or events (AggregateView.start/create, replay, fold, OrderedReader.start,
 *   runProjection, runPostgresProjection);
 * - subscribes to the machine subjects (`ev.machine...`) on core NATS;
 * - inside a function that receives machine changes (a parameter typed MachineChange or
 *   ViewChange<MachineState, ...>, a listener given to a MachinesView's `subscribe`, or the `onChange`
 *   of a view of the machine stream), adds to a
 *   collection keyed by a machine's `app` or `hostId` (`.set(x.app, ...)`, `.add(x.hostId)`, ...).
 */
export function findMachineFoldsIn(file: string, text: string): MachineFold[] {
  if (ALLOWED.has(file)) return [];
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: MachineFold[] = [];
  const report = (node: ts.Node, rule: MachineFold["rule"]) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
    found.push({ file, line: line + 1, rule, code: node.getText(source).split("\n")[0] ?? "" });
  };

  const views = machineViewNames(source);
  const visit = (node: ts.Node, inMachineListener: boolean): void => {
    let listener = inMachineListener;
    if (ts.isFunctionLike(node) && receivesMachineChanges(node, source, views)) listener = true;
    if (ts.isCallExpression(node)) {
      const callee = node.expression.getText(source);
      if (callee === "machineDecider.evolve") report(node, "evolves-machines");
      else if (FOLDING_CALLS.has(callee) && node.arguments.some((a) => mentionsMachines(a, source)))
        report(node, "reads-machines-stream");
      else if (callee.endsWith(".subscribe") && startsWithMachineSubject(node.arguments[0]))
        report(node, "reads-machines-stream");
      else if (listener && isGroupingCall(node)) report(node, "indexes-machines-by-app-or-host");
    }
    ts.forEachChild(node, (child) => visit(child, listener));
  };
  visit(source, false);
  return found;
}

/** Finds the folds of machine events in every non-test source file of the repository. */
export function findMachineFolds(root: string): MachineFold[] {
  const found: MachineFold[] = [];
  for (const path of sourceFiles(root)) {
    const file = relative(root, path);
    found.push(...findMachineFoldsIn(file, readFileSync(path, "utf8")));
  }
  return found;
}

function* sourceFiles(root: string): Generator<string> {
  for (const top of ["libs", "services"]) {
    for (const pkg of readdirSync(join(root, top))) yield* walk(join(root, top, pkg, "src"));
  }
  yield* walk(join(root, "cli", "src"));
  yield* walk(join(root, "scripts"));
}

function* walk(dir: string): Generator<string> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules" && e.name !== "dist" && e.name !== "test") yield* walk(path);
    } else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && !e.name.endsWith(".d.ts")) {
      yield path;
    }
  }
}

function mentionsMachines(node: ts.Node, source: ts.SourceFile): boolean {
  return /\b(machineDecider|machinesStream)\b/.test(node.getText(source));
}

function startsWithMachineSubject(arg: ts.Expression | undefined): boolean {
  if (!arg) return false;
  if (ts.isStringLiteralLike(arg)) return arg.text.startsWith("ev.machine");
  if (ts.isTemplateExpression(arg)) return arg.head.text.startsWith("ev.machine");
  return false;
}

/**
 * Names that hold a MachinesView in this file: declared with that type (variables, parameters,
 * properties) or initialized from `MachinesView.create` / `MachinesView.start`.
 */
function machineViewNames(source: ts.SourceFile): Set<string> {
  const names = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (
      (ts.isVariableDeclaration(node) || ts.isParameter(node) || ts.isPropertyDeclaration(node)) &&
      ts.isIdentifier(node.name) &&
      (/\bMachinesView\b/.test(node.type?.getText(source) ?? "") ||
        /^(await\s+)?MachinesView\./.test(node.initializer?.getText(source) ?? ""))
    )
      names.add(node.name.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return names;
}

/** A function with a machine-change parameter, or the listener passed to a MachinesView's subscribe. */
function receivesMachineChanges(
  fn: ts.SignatureDeclaration,
  source: ts.SourceFile,
  views: Set<string>,
): boolean {
  if (fn.parameters.some((p) => p.type && MACHINE_CHANGE_TYPES.test(p.type.getText(source)))) return true;
  // `onChange` in the options of a view of the machine stream.
  if (ts.isPropertyAssignment(fn.parent) && fn.parent.name.getText(source) === "onChange") {
    const call = fn.parent.parent.parent;
    return ts.isCallExpression(call) && call.arguments.some((a) => mentionsMachines(a, source));
  }
  const call = fn.parent;
  if (!call || !ts.isCallExpression(call) || !call.arguments.includes(fn as unknown as ts.Expression))
    return false;
  const callee = call.expression;
  if (!ts.isPropertyAccessExpression(callee) || callee.name.text !== "subscribe") return false;
  const receiver = callee.expression;
  const name = ts.isPropertyAccessExpression(receiver) ? receiver.name.text : receiver.getText(source);
  return views.has(name) || /machines/i.test(name);
}

/** `.set(k, ...)`, `.add(k)` or `.get(k)` on a collection, where `k` is some machine's `app` or `hostId`. */
function isGroupingCall(call: ts.CallExpression): boolean {
  const callee = call.expression;
  if (!ts.isPropertyAccessExpression(callee) || !["set", "add", "get"].includes(callee.name.text))
    return false;
  const key = call.arguments[0];
  if (!key) return false;
  if (ts.isPropertyAccessExpression(key)) return GROUP_KEYS.has(key.name.text);
  return ts.isIdentifier(key) && GROUP_KEYS.has(key.text);
}
