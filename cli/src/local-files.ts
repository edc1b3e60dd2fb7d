import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { AppConfig, ReleasedAppFile } from "@hangar/config";
import { CliError } from "./cli-error.js";

/**
 * The config with each [[files]] local_path file read into its local_content (base64), as the release
 * records it: read where the CLI runs, relative to the config file's folder (or absolute), as flyctl
 * reads them at deploy. A file that cannot be read stops the deploy before anything is built or changed.
 */
export async function withLocalFiles(config: AppConfig, configFile: string): Promise<AppConfig> {
  if (!config.files?.some((f) => f.local_path)) return config;
  const files: ReleasedAppFile[] = [];
  for (const file of config.files) {
    if (!file.local_path) {
      files.push(file);
      continue;
    }
    const path = resolve(dirname(configFile), file.local_path);
    try {
      files.push({ ...file, local_content: (await readFile(path)).toString("base64") });
    } catch (err) {
      throw new CliError(
        `cannot read ${path}, the local_path of [[files]] ${file.guest_path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        `fix local_path in ${basename(configFile)} (it is relative to the config file's folder)`,
      );
    }
  }
  return { ...config, files };
}
