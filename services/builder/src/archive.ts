import { open } from "node:fs/promises";
import { runCommand } from "./command.js";
import { type ArchiveKind, archiveKind } from "./domain/copy-rules.js";

/** The archive format of a file ADD would unpack, or undefined for any other file. */
export async function fileArchiveKind(path: string): Promise<ArchiveKind | undefined> {
  const fh = await open(path, "r");
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    return archiveKind(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * Unpacks a tar archive (plain, gzip, bzip2 or xz: GNU tar tells them apart) into an empty directory,
 * owners and modes kept as ADD does. The directory is then copied into the image like any other
 * source, so links in the archive never reach outside the image.
 */
export async function extractArchive(path: string, into: string): Promise<void> {
  const outcome = await runCommand([
    "tar",
    "--extract",
    "--file",
    path,
    "--directory",
    into,
    "--same-owner",
    "--same-permissions",
    "--numeric-owner",
    "--no-overwrite-dir",
  ]);
  if (outcome.exitCode !== 0) {
    throw new Error(`tar could not unpack ${path} (exit ${outcome.exitCode}): ${outcome.output.trim()}`);
  }
}
