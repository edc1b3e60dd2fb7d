import type { AppFile } from "./app-config.js";
import type { MachineConfigInput } from "./machine-config.js";

type MachineFileInput = NonNullable<MachineConfigInput["files"]>[number];

/**
 * Standard base64 with padding, as Go's base64.StdEncoding (which Fly decodes raw_value with) takes it.
 * Node's Buffer.from(.., "base64") accepts anything, so the shape is checked first.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Whether `value` is standard, padded base64. */
export function isBase64(value: string): boolean {
  return BASE64.test(value);
}

/** The bytes of standard, padded base64; undefined for anything else. */
export function decodeBase64(value: string): Buffer | undefined {
  return isBase64(value) ? Buffer.from(value, "base64") : undefined;
}

/** Folders a machine's runtime mounts its own filesystems on, hiding whatever the root filesystem has there. */
const KERNEL_FOLDERS = ["proc", "sys", "dev"];

/**
 * Why a machine file's guest_path cannot name a file inside the machine, or undefined when it can: it
 * must be absolute, name a file (not `/`, no trailing `/`) and have no `.`/`..` or empty segments, so
 * that it names the same place however it is joined to a root filesystem; and not be under a folder
 * the machine's kernel filesystems are mounted on.
 */
export function guestPathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "expected an absolute path";
  if (path.includes("\0")) return "expected a path without NUL bytes";
  const segments = path.slice(1).split("/");
  if (segments.some((s) => s === "" || s === "." || s === ".."))
    return "expected an absolute path to a file, without empty, . or .. segments";
  if (KERNEL_FOLDERS.includes(segments[0] as string))
    return "expected a path outside /proc, /sys and /dev, which the machine's kernel filesystems cover";
  return undefined;
}

/**
 * A [[files]] table as a release's config records it: `hangar deploy` reads the local_path file where
 * it runs and keeps its bytes (base64) in local_content, so that every machine made from the release
 * later (a secrets roll, a scale, a rollback) gets the same file without the deploying folder.
 */
export interface ReleasedAppFile extends AppFile {
  local_content?: string;
}

/** A [[files]] entry has a local_path whose contents the release does not hold (see ReleasedAppFile). */
export class LocalFileNotReadError extends Error {
  override name = "LocalFileNotReadError";
  readonly code = "local_file_not_read";
  constructor(guestPath: string, localPath: string) {
    super(`[[files]] ${guestPath}: local_path ${localPath} was not read by the deploy`);
  }
}

/** A [[files]] entry with nothing to write: no local_path, secret_name or raw_value. */
export class FileWithoutContentError extends Error {
  override name = "FileWithoutContentError";
  readonly code = "file_without_content";
  constructor(guestPath: string) {
    super(`[[files]] ${guestPath} has no raw_value, local_path or secret_name: give it one`);
  }
}

/**
 * A fly.toml [[files]] entry as a machine file, as flyctl's toMachineFile makes it: local_path first
 * (its bytes, which the deploy read into local_content), then secret_name, then raw_value (the text
 * as written, which the machine file carries base64-encoded).
 */
export function machineFile(file: ReleasedAppFile): MachineFileInput {
  const { guest_path } = file;
  if (file.local_path) {
    if (file.local_content === undefined) throw new LocalFileNotReadError(guest_path, file.local_path);
    return { guest_path, raw_value: file.local_content };
  }
  if (file.secret_name) return { guest_path, secret_name: file.secret_name };
  if (file.raw_value)
    return { guest_path, raw_value: Buffer.from(file.raw_value, "utf8").toString("base64") };
  throw new FileWithoutContentError(guest_path);
}
