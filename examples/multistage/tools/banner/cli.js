#!/usr/bin/env node
// A build tool that exists only in the build stage: copies every .js file of <src> into <out> with a
// banner naming the build, so the runtime image can prove it was built (and by which stage).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [src, out] = process.argv.slice(2);
if (!src || !out) {
  console.error("usage: stamp-banner <src dir> <out dir>");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const stamp = new Date().toISOString();
for (const name of readdirSync(src).filter((f) => f.endsWith(".js"))) {
  const code = readFileSync(join(src, name), "utf8");
  writeFileSync(
    join(out, name),
    `// built by stamp-banner at ${stamp}\nexport const BUILT = ${JSON.stringify(stamp)};\n${code}`,
  );
  console.log(`stamp-banner: ${join(src, name)} -> ${join(out, name)}`);
}
