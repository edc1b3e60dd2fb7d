// Generates gen/hangar.js (protobufjs static module, ES module) and gen/hangar.d.ts from
// hangar/**/*.proto. Skips the work when the inputs have not changed since the last run.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "gen");
const stampFile = join(out, ".stamp");

function protoFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? protoFiles(join(dir, e.name)) : e.name.endsWith(".proto") ? [join(dir, e.name)] : [],
    )
    .sort();
}

const files = protoFiles(join(root, "hangar"));
const hash = createHash("sha256");
for (const f of [...files, fileURLToPath(import.meta.url)]) {
  hash.update(relative(root, f)).update("\0").update(readFileSync(f));
}
const stamp = hash.digest("hex");
if (
  existsSync(stampFile) &&
  readFileSync(stampFile, "utf8") === stamp &&
  existsSync(join(out, "hangar.d.ts"))
) {
  process.exit(0);
}

mkdirSync(out, { recursive: true });
const bin = (name) => join(root, "node_modules", ".bin", name);
const rel = files.map((f) => relative(root, f));
execFileSync(
  bin("pbjs"),
  [
    "-t",
    "static-module",
    "-w",
    "es6",
    "--es6",
    "--force-number",
    "--dependency",
    "protobufjs/minimal.js",
    "-o",
    "gen/hangar.js",
    ...rel,
  ],
  { cwd: root, stdio: "inherit" },
);
execFileSync(bin("pbts"), ["-o", "gen/hangar.d.ts", "gen/hangar.js"], { cwd: root, stdio: "inherit" });
writeFileSync(stampFile, stamp);
console.log(`[proto] generated gen/hangar.js and gen/hangar.d.ts from ${files.length} files`);
