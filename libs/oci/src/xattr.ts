import { run } from "./exec.js";

// Node has no xattr API, so the overlay opaque marker goes through getfattr/setfattr (Debian's
// `attr` package). overlayfs reads it from the trusted namespace, which only root may touch.
const OPAQUE = "trusted.overlay.opaque";

/** The directories under `root` (absolute paths) that overlayfs marks opaque. One getfattr for the whole tree. */
export async function findOpaqueDirs(root: string): Promise<Set<string>> {
  // Files without the attribute make getfattr exit 1; what it prints for the others is what counts.
  const { stdout } = await run("getfattr", ["-R", "-P", "--absolute-names", "-n", OPAQUE, "--", root], {
    allowFailure: true,
  });
  const opaque = new Set<string>();
  let file: string | undefined;
  for (const line of stdout.split("\n")) {
    if (line.startsWith("# file: ")) file = unescapeGetfattr(line.slice("# file: ".length));
    else if (file !== undefined && line.startsWith(`${OPAQUE}=`)) {
      if (line.slice(OPAQUE.length + 1) === '"y"') opaque.add(file);
      file = undefined;
    }
  }
  return opaque;
}

/** Marks directories opaque for overlayfs. */
export async function markOpaque(dirs: string[]): Promise<void> {
  // Batches keep each argv well under the kernel's limit.
  for (let i = 0; i < dirs.length; i += 500) {
    await run("setfattr", ["-n", OPAQUE, "-v", "y", "--", ...dirs.slice(i, i + 500)]);
  }
}

// getfattr writes unprintable bytes, backslashes and newlines of file names as \ooo octal escapes.
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\" && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (s[i] === "\\" && s[i + 1] === "\\") {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(...Buffer.from(s[i] as string));
  }
  return Buffer.from(bytes).toString();
}
