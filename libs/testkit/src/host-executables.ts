import { execFile } from "node:child_process";
import { chmod, copyFile, lstat, mkdir, readlink, realpath, symlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/**
 * Copies host executables into `rootfs` at the paths they have on the host (their directories'
 * real paths), with every shared library ldd finds for them and for `alsoLibsOf`: a tiny image for
 * tests that need a shell or a setuid binary, not a real distribution.
 */
export async function copyHostExecutables(
  rootfs: string,
  executables: string[],
  alsoLibsOf: string[] = [],
): Promise<void> {
  // Mirror a merged /usr (/bin -> usr/bin, ...) so that paths ldd reports resolve the same way inside.
  await mkdir(rootfs, { recursive: true });
  for (const top of ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]) {
    const st = await lstat(`/${top}`).catch(() => undefined);
    const there = await lstat(join(rootfs, top)).catch(() => undefined);
    if (st?.isSymbolicLink() && there === undefined)
      await symlink(await readlink(`/${top}`), join(rootfs, top));
  }
  const wanted = new Set(executables);
  for (const binary of [...executables, ...alsoLibsOf]) {
    for (const lib of await sharedLibraries(binary)) wanted.add(lib);
  }
  for (const path of wanted) {
    const dest = join(rootfs, await realpath(dirname(path)), basename(path));
    await mkdir(dirname(dest), { recursive: true });
    await copyFile(await realpath(path), dest);
    await chmod(dest, (await lstat(await realpath(path))).mode & 0o7777);
  }
}

/** The absolute paths of the shared libraries (and loader) a binary needs; none for a static binary or script. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const stdout = await exec("ldd", [binary]).then(
    (r) => r.stdout,
    () => "",
  );
  const libs: string[] = [];
  for (const line of stdout.split("\n")) {
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}
