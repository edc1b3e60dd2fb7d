// Generated docs are checked in as biome formats them (biome checks markdown in `npm test`), so a
// generator's output goes through the same formatter before it is written or compared.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./platform.js";

/** `text` as `biome format` writes it for a markdown file at `path`. */
export function formatMarkdown(text: string, path: string): string {
  const biome = spawnSync(
    join(repoRoot, "node_modules", ".bin", "biome"),
    ["format", `--stdin-file-path=${path}`],
    {
      cwd: repoRoot,
      input: text,
      encoding: "utf8",
    },
  );
  if (biome.status !== 0) throw new Error(`biome format failed: ${biome.stderr}`);
  return biome.stdout;
}
