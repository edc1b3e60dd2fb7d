// `pnpm bench <name>` runs tests/bench/<name>.bench.ts: it prints a table, then one JSON line.
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const available = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .map((f) => f.replace(/\.bench\.ts$/, ""));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: pnpm bench <name>   (available: ${available.join(", ")})`);
  process.exit(2);
}
const bench = (await import(`./${name}.bench.ts`)) as { run(): Promise<Record<string, unknown>> };
const result = await bench.run();
console.log(JSON.stringify({ bench: name, ...result }));
process.exit(0);
