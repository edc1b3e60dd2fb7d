import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import {
  BASE_LABEL,
  type BaseImages,
  BlobStore,
  ImageRegistry,
  LayerStore,
  mountImageRoot,
  platformBaseImages,
  type ResolvedImage,
  sandboxArgv,
  unmountIfMounted,
} from "../src/mod.js";

// The real bases, made in the host cache every test shares ($HANGAR_CACHE_DIR): the first run on a
// host runs mmdebstrap and downloads Node from the npm registry; later runs only push the cached layers.
const exec = promisify(execFile);
let nc: NatsConnection;
let bases: BaseImages;
let registry: ImageRegistry;
let work: string;
const mounted: string[] = [];
const progress: string[] = [];

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  const blobs = await BlobStore.open(nc, { bucket: `oci-test-bases-blobs-${process.pid}` });
  registry = await ImageRegistry.open(nc, blobs, { bucket: `oci-test-bases-${process.pid}` });
  bases = platformBaseImages(registry);
  work = await mkdtemp(join(tmpdir(), "oci-bases-"));
}, 60_000);
afterAll(async () => {
  for (const dir of mounted) await unmountIfMounted(dir);
  await nc?.drain();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Runs `argv` in `image` (its layers under an overlay, in bubblewrap) and returns its stdout. */
async function runIn(
  image: ResolvedImage,
  name: string,
  argv: string[],
  user?: { uid: number; gid: number },
) {
  const merged = join(work, name, "merged");
  if (!mounted.includes(merged)) {
    const layers = new LayerStore(join(work, "layers"), registry.blobs);
    await mountImageRoot(layers, image.manifest.layers, {
      upper: join(work, name, "upper"),
      work: join(work, name, "work"),
      target: merged,
    });
    mounted.push(merged);
  }
  const env = Object.fromEntries(
    (image.config.config.Env ?? []).map((e) => e.split("=", 2) as [string, string]),
  );
  const { stdout } = await exec(
    "bwrap",
    sandboxArgv({ rootfs: merged, argv, env: { ...env, HOME: "/root" }, ...user, tmpfs: true }).slice(1),
  );
  return stdout;
}

it("makes debian:bookworm-slim and node:20-slim once, node's layer on the same Debian layer", async () => {
  const onProgress = (line: string) => progress.push(line);
  const [debian, node, again] = await Promise.all([
    bases.make("debian:bookworm-slim", onProgress),
    bases.make("node:20-slim", onProgress),
    bases.make("docker.io/library/node:20-slim", onProgress),
  ]);
  if (!debian || !node || !again) throw new Error("a base was not made");
  expect(again.digest).toBe(node.digest);
  expect(node.manifest.layers).toHaveLength(2);
  expect(node.manifest.layers[0]?.digest).toBe(debian.manifest.layers[0]?.digest);
  expect(await registry.resolve("node:20-slim")).toMatchObject({ digest: node.digest });

  expect(debian.config.config).toMatchObject({ Cmd: ["bash"], Labels: { [BASE_LABEL]: expect.any(String) } });
  const version = node.config.config.Env?.find((e) => e.startsWith("NODE_VERSION="))?.slice(13) ?? "";
  expect(version).toMatch(/^20\.\d+\.\d+$/);
  expect(node.config.config).toMatchObject({
    Entrypoint: ["docker-entrypoint.sh"],
    Cmd: ["node"],
    Env: expect.arrayContaining([
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      expect.stringMatching(/^YARN_VERSION=1\./),
    ]),
  });
  expect(node.config.config.WorkingDir).toBeUndefined();
  // The exact version is tagged too, so node:<x.y.z>-slim finds the same image.
  expect(await registry.resolve(`node:${version}-slim`)).toMatchObject({ digest: node.digest });

  const os = await runIn(debian, "debian", ["sh", "-c", ". /etc/os-release && echo $VERSION_CODENAME"]);
  expect(os).toBe("bookworm\n");
  expect(
    await runIn(debian, "debian", [
      "sh",
      "-c",
      "for c in adduser addgroup apt-get passwd useradd; do command -v $c; done",
    ]),
  ).toBe("/usr/sbin/adduser\n/usr/sbin/addgroup\n/usr/bin/apt-get\n/usr/bin/passwd\n/usr/sbin/useradd\n");
  // As the official slim: apt lists empty, no man pages, copyrights kept, dpkg told to leave docs out.
  expect(
    await runIn(debian, "debian", [
      "sh",
      "-c",
      "ls -A /var/lib/apt/lists | grep -v -x -e partial -e lock; ls /usr/share/man | wc -l; ls /usr/share/doc/bash; grep -c path-exclude /etc/dpkg/dpkg.cfg.d/docker",
    ]),
  ).toBe("0\ncopyright\n7\n");

  expect(await runIn(node, "node", ["node", "--version"])).toBe(`v${version}\n`);
  expect(
    await runIn(node, "node", [
      "sh",
      "-c",
      "id node; ls -d /home/node; npm --version; npx --version; yarn --version; corepack --version",
    ]),
  ).toMatch(
    /^uid=1000\(node\) gid=1000\(node\) groups=1000\(node\)\n\/home\/node\n\d+\.\d+\.\d+\n\d+\.\d+\.\d+\n1\.\d+\.\d+\n\d+\.\d+\.\d+\n$/,
  );
  expect(await runIn(node, "node", ["sh", "-c", "stat -c '%u:%g %a' /home/node /usr/local/bin/node"])).toBe(
    "1000:1000 755\n0:0 755\n",
  );
  expect(
    await runIn(node, "node", ["node", "-e", "console.log(process.getuid())"], { uid: 1000, gid: 1000 }),
  ).toBe("1000\n");

  // The entrypoint: an option or a script file goes to node, a command runs as it is.
  const entry = (args: string) =>
    runIn(node, "node", ["sh", "-c", `echo 'console.log(6*7)' > /tmp/a.js; docker-entrypoint.sh ${args}`]);
  expect(await entry("-p 1+1")).toBe("2\n");
  expect(await entry("/tmp/a.js")).toBe("42\n");
  expect(await entry("echo plain")).toBe("plain\n");
  expect(await entry("node -p process.argv.length")).toBe("1\n");
}, 600_000);

it("answers undefined for images it does not make, and names a Node release the registry lacks", async () => {
  for (const ref of [
    "python:3.12",
    "node:17",
    "node:20-alpine",
    "debian:bullseye",
    "ghcr.io/x/node:20",
    `node@sha256:${"0".repeat(64)}`,
  ]) {
    expect(await bases.make(ref)).toBeUndefined();
  }
  await expect(bases.make("node:20.999.0-slim")).rejects.toThrow(/node 20\.999\.0 is not a release/);
}, 120_000);
