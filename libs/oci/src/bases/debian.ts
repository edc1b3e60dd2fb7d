import { spawn } from "node:child_process";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { SystemToolError } from "../errors.js";
import { createLayer, type LayerFile } from "../layer.js";
import { DEBIAN_SUITE } from "./catalog.js";

/** The fixed time of every made base (SOURCE_DATE_EPOCH, layer mtimes clamped to it): 2025-01-01. */
export const BASE_EPOCH = new Date("2025-01-01T00:00:00Z");

/** Debian's mirror; the official images use the same. */
export const DEBIAN_MIRROR = "http://deb.debian.org/debian";

/**
 * What the slim variant leaves out, as dpkg path filters (the official slim's list): written to
 * /etc/dpkg/dpkg.cfg.d/docker so later `apt-get install`s leave them out too.
 */
export const SLIM_DPKG_FILTERS = [
  "path-exclude /usr/share/doc/*",
  "path-include /usr/share/doc/*/copyright",
  "path-exclude /usr/share/man/*",
  "path-exclude /usr/share/groff/*",
  "path-exclude /usr/share/info/*",
  "path-exclude /usr/share/lintian/*",
  "path-exclude /usr/share/linda/*",
  "path-exclude /usr/share/locale/*",
  "path-include /usr/share/locale/locale.alias",
];

/** apt settings of the official images: no .deb files or package caches are left in a layer. */
const APT_CLEAN = `// Made by Hangar for its debian base: apt leaves no downloaded packages or caches in an image layer.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`;
const APT_NO_LANGUAGES = `Acquire::Languages "none";\n`;
const APT_NO_SUGGESTS = `APT::AutoRemove::SuggestsImportant "false";\n`;
// A container's root filesystem is thrown away on failure, so dpkg's fsyncs only cost time.
const DPKG_UNSAFE_IO = "force-unsafe-io\n";

/** Packages beyond the minbase variant (Priority: required + apt) that the official images also have. */
export const DEBIAN_EXTRA_PACKAGES = ["adduser", "passwd", "mount", "tzdata"];

/** The arguments of mmdebstrap for a rootfs of Debian's minbase plus `include`, in `dir`. */
export function mmdebstrapArgs(dir: string, include: string[], hooks: string[] = []): string[] {
  return [
    "--mode=root",
    "--variant=minbase",
    "--format=directory",
    `--include=${include.join(",")}`,
    '--aptopt=Acquire::Languages "none"',
    // /usr merged by mmdebstrap's hook and Debian's usr-is-merged, as the official images: without it
    // apt picks usrmerge, which brings the whole of perl (30 MB) into the image.
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    ...hooks,
    DEBIAN_SUITE,
    dir,
    DEBIAN_MIRROR,
  ];
}

/**
 * Runs mmdebstrap into `dir`, its "I:" stage lines passed on as progress, with a clear error when it
 * is not installed.
 */
export async function mmdebstrap(
  dir: string,
  include: string[],
  onProgress: (line: string) => void,
  hooks: string[] = [],
): Promise<void> {
  const started = Date.now();
  const seconds = () => `${Math.round((Date.now() - started) / 1000)} s`;
  onProgress(`mmdebstrap: Debian ${DEBIAN_SUITE} (minbase + ${include.join(", ")}) from ${DEBIAN_MIRROR}`);
  const child = spawn("mmdebstrap", mmdebstrapArgs(dir, include, hooks), {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, SOURCE_DATE_EPOCH: String(BASE_EPOCH.getTime() / 1000) },
  });
  const tail: string[] = [];
  createInterface({ input: child.stderr }).on("line", (line) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    if (line.startsWith("I: ")) onProgress(`mmdebstrap: ${line.slice(3)}`);
  });
  const code = await new Promise<number>((resolve, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new SystemToolError(
              "mmdebstrap is not installed: the platform makes its debian, node and postgres base images " +
                "with it (run scripts/bootstrap.sh, or apt-get install mmdebstrap)",
              { cause: error },
            )
          : error,
      ),
    );
    child.once("close", (c) => resolve(c ?? -1));
  });
  if (code !== 0) throw new SystemToolError(`mmdebstrap failed (exit ${code}):\n${tail.join("\n")}`);
  onProgress(`mmdebstrap: done in ${seconds()}`);
}

/**
 * Makes a mmdebstrap'd `rootfs` look like the official image's: apt settings and dpkg's slim filters
 * file (left out of the full variant's layer), no logs, caches or backup files that differ per run.
 */
export async function finishDebianRootfs(rootfs: string): Promise<void> {
  const aptConf = join(rootfs, "etc/apt/apt.conf.d");
  await writeFile(join(aptConf, "docker-clean"), APT_CLEAN);
  await writeFile(join(aptConf, "docker-no-languages"), APT_NO_LANGUAGES);
  await writeFile(join(aptConf, "docker-autoremove-suggests"), APT_NO_SUGGESTS);
  await rm(join(aptConf, "99mmdebstrap"), { force: true });
  const dpkgConf = join(rootfs, "etc/dpkg/dpkg.cfg.d");
  await mkdir(dpkgConf, { recursive: true });
  await writeFile(join(dpkgConf, "docker-apt-speedup"), DPKG_UNSAFE_IO);
  await writeFile(join(dpkgConf, "docker"), `${SLIM_DPKG_FILTERS.join("\n")}\n`);
  for (const path of [
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "etc/passwd-",
    "etc/group-",
    "etc/shadow-",
    "etc/gshadow-",
    "etc/hostname",
    "etc/resolv.conf",
  ]) {
    await rm(join(rootfs, path), { force: true });
  }
  for (const dir of ["var/log/apt", "var/lib/apt/lists", "var/cache/apt/archives"]) {
    for (const name of await readdir(join(rootfs, dir)).catch(() => [] as string[])) {
      if (name !== "partial" && name !== "lock")
        await rm(join(rootfs, dir, name), { recursive: true, force: true });
    }
  }
}

/** True for a path (relative, no leading slash) the slim variant leaves out, as SLIM_DPKG_FILTERS do. */
export function slimExcludes(path: string): boolean {
  const parts = path.split("/");
  if (parts[0] !== "usr" || parts[1] !== "share" || parts.length < 4) return false;
  const [, , area, entry] = parts;
  if (area === "doc") return parts.length > 4 && !(parts.length === 5 && parts[4] === "copyright");
  if (area === "locale") return entry !== "locale.alias";
  return ["man", "groff", "info", "lintian", "linda"].includes(area ?? "");
}

/** Paths no image layer carries: the runtime mounts /dev, /proc and /sys. */
function runtimeMounted(path: string): boolean {
  return /^(dev|proc|sys)\//.test(path);
}

/** The users, groups and home skeleton of a made Debian, for layers on top that add a user. */
export interface DebianAccounts {
  passwd: string;
  group: string;
  shadow: string;
  gshadow: string;
  skel: Record<string, string>;
}

/** Reads `rootfs`'s account files and /etc/skel. */
export async function readAccounts(rootfs: string): Promise<DebianAccounts> {
  const etc = (name: string) => readFile(join(rootfs, "etc", name), "utf8");
  const skel: Record<string, string> = {};
  for (const name of await readdir(join(rootfs, "etc/skel"))) skel[name] = await etc(`skel/${name}`);
  return {
    passwd: await etc("passwd"),
    group: await etc("group"),
    shadow: await etc("shadow"),
    gshadow: await etc("gshadow"),
    skel,
  };
}

/** The layer of a finished Debian rootfs: the full variant, or slim without what SLIM_DPKG_FILTERS leave out. */
export function debianLayer(rootfs: string, out: string, slim: boolean): Promise<LayerFile> {
  return createLayer(rootfs, out, {
    mtime: BASE_EPOCH,
    skip: (p) => runtimeMounted(p) || (slim ? slimExcludes(p) : p === "etc/dpkg/dpkg.cfg.d/docker"),
  });
}
