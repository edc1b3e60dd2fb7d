import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { InvalidArgumentError } from "commander";
import { CliError } from "./cli-error.js";

/** One `--build-secret`: its id and where its value comes from on this machine. */
export interface BuildSecretSpec {
  id: string;
  from: { kind: "file"; path: string } | { kind: "env"; name: string };
}

/** Build secrets travel in one request header: this bounds them well under the gateway's header limit. */
export const MAX_BUILD_SECRETS_BYTES = 8 * 1024;

const ID = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Parses `id=<id>,src=<file>` or `id=<id>,env=<VAR>` (docker build --secret's forms; `source=` too)
 * into a spec, for commander's repeatable option.
 */
export function parseBuildSecret(value: string, previous: BuildSecretSpec[] = []): BuildSecretSpec[] {
  const fields = new Map<string, string>();
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 1) throw new InvalidArgumentError("expected id=<id>,src=<file> or id=<id>,env=<VAR>");
    const key = part.slice(0, eq).trim();
    fields.set(key === "source" ? "src" : key, part.slice(eq + 1));
  }
  const id = fields.get("id") ?? "";
  if (!ID.test(id)) throw new InvalidArgumentError("id= must be letters, digits, _ . or - (at most 128)");
  const src = fields.get("src");
  const env = fields.get("env");
  const unknown = [...fields.keys()].filter((k) => !["id", "src", "env", "type"].includes(k));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`unknown field ${unknown[0]}= (use id=, src= or env=)`);
  if ((src === undefined) === (env === undefined)) {
    throw new InvalidArgumentError("give exactly one of src=<file> and env=<VAR>");
  }
  const spec: BuildSecretSpec =
    src !== undefined
      ? { id, from: { kind: "file", path: src } }
      : { id, from: { kind: "env", name: env ?? "" } };
  return [...previous.filter((p) => p.id !== id), spec];
}

/** Reads the secrets' values here, where the CLI runs; a missing file or variable fails naming it. */
export async function readBuildSecrets(
  specs: BuildSecretSpec[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const s of specs) {
    if (s.from.kind === "env") {
      const value = env[s.from.name];
      if (value === undefined) {
        throw new CliError(
          `--build-secret id=${s.id}: the environment variable ${s.from.name} is not set`,
          `export ${s.from.name}, or pass the secret from a file with id=${s.id},src=<file>`,
        );
      }
      values[s.id] = value;
    } else {
      const path = resolve(s.from.path);
      values[s.id] = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
        throw new CliError(
          `--build-secret id=${s.id}: cannot read ${path} (${err.code ?? err.message})`,
          "check the src= path",
        );
      });
    }
  }
  if (Buffer.byteLength(JSON.stringify(values)) > MAX_BUILD_SECRETS_BYTES) {
    throw new CliError(
      `build secrets are sent in a request header and may total at most ${MAX_BUILD_SECRETS_BYTES / 1024} KiB`,
      "set larger values as app secrets (hangar secrets set), which RUN --mount=type=secret reads by name",
    );
  }
  return values;
}
