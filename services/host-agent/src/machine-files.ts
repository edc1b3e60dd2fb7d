import { decodeBase64 } from "@hangar/config";
import type { MachineFile } from "./driver/mod.js";

/** Fly's default permission bits of a machine file. */
export const DEFAULT_FILE_MODE = 0o644;

/** A file of a machine's config (Fly's api.File), as the gateway accepted it. */
export interface FileConfig {
  guest_path: string;
  raw_value?: string | null;
  secret_name?: string | null;
  mode?: number | null;
}

/** A machine file has nothing to write: its secret is not deployed, or not base64. The start fails, saying so. */
export class MachineFilesError extends Error {
  override readonly name = "MachineFilesError";
}

/**
 * The files a machine starts with, decoded: raw_value's bytes, or those of the app secret
 * secret_name, whose value is base64 as on Fly (opened just in time with the machine's secrets, in
 * `secrets`). Messages name the secret, never its value.
 */
export function machineFiles(
  files: readonly FileConfig[],
  secrets: Readonly<Record<string, string>>,
  app: string,
): MachineFile[] {
  return files.map((f) => {
    const mode = f.mode ?? DEFAULT_FILE_MODE;
    if (f.secret_name != null) {
      const name = f.secret_name;
      const value = Object.hasOwn(secrets, name) ? secrets[name] : undefined;
      if (value === undefined)
        throw new MachineFilesError(
          `file ${f.guest_path}: app ${app} has no deployed secret ${name}; set it with \`hangar secrets set ${name}=<the contents, base64-encoded> -a ${app}\``,
        );
      const content = decodeBase64(value.trim());
      if (content === undefined)
        throw new MachineFilesError(
          `file ${f.guest_path}: secret ${name} is not base64; a file's secret holds its contents base64-encoded, as on Fly (\`hangar secrets set ${name}=$(base64 -w0 <file>) -a ${app}\`)`,
        );
      return { guestPath: f.guest_path, content, mode };
    }
    const content = decodeBase64(f.raw_value ?? "");
    if (content === undefined) throw new MachineFilesError(`file ${f.guest_path}: raw_value is not base64`);
    return { guestPath: f.guest_path, content, mode };
  });
}
