// The peer of `pnpm bench machines`' create -> started: `podman run -d` (Debian's podman) of the same
// OCI image Hangar's machines run, examples/hello as Hangar's builder builds it (`hangar launch` and
// `hangar deploy` against the bench's platform), exported from the platform's registry as an OCI
// layout and pulled once into a podman store of the bench's own.
// - Timed until `podman run -d` returns: podman has then had crun start the container's init
//   (catatonit, `--init`, as every Hangar machine has), so the app's process is running. Hangar's
//   figure stops at the same point: wait?state=started returns once the host agent has recorded the
//   start, which it does when the machine's init has forked the app. Neither waits for the port.
// - `--network none`: a network namespace of the container's own with only loopback. podman's
//   default bridge would add firewall rules and a bridge to this host's own network; `--network host`
//   would skip the namespace a Hangar image machine gets. A Hangar machine's namespace also gets a veth
//   pair, its addresses and firewall rules, so the comparison leaves podman the lighter network.
// - `--memory 256m --cpus 1`: the guest Hangar's machines are created with, so both set up cgroup limits.
// - `--ulimit nofile=<this process's>`, `nproc=4096`: podman as root raises both to its own maximum
//   by default, which crun may not do here (no CAP_SYS_RESOURCE: `setrlimit ... Operation not
//   permitted`); a Hangar machine keeps the limits it inherits.
// - Nothing of the host's podman is used or changed: --root, --runroot and --tmpdir are folders of
//   the bench's own, cgroupfs (no systemd), no events; every container goes once timed, and the
//   folders at the end, after `podman rm` and `rmi` have unmounted what they mounted.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { BlobStore, type Digest, exportImageLayout, ImageRegistry } from "@hangar/oci";
import { runHangar } from "../../cli/test/run-cli.js";
import { helloDir, type TestPlatform } from "../platform/harness.js";

const run = promisify(execFile);
const PODMAN = "/usr/bin/podman";
/** This process's hard limit of open files, which its containers keep. */
const OPEN_FILES =
  /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? "1024";

/** Debian's podman, installed with apt-get when missing and this is root on Debian. */
export function ensurePodman(): string {
  if (existsSync(PODMAN)) return PODMAN;
  if (process.getuid?.() !== 0 || !existsSync("/usr/bin/apt-get"))
    throw new Error(
      "the machines benchmark compares with podman, which is not installed: on Debian/Ubuntu run `sudo apt-get install -y podman`",
    );
  process.stderr.write("[bench] installing podman with apt-get\n");
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "podman", "catatonit"], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return PODMAN;
}

/**
 * Builds examples/hello the way a user's deploy does (`hangar launch`, then `hangar deploy`: Hangar's
 * builder, from the generated Dockerfile) as the app `app`; returns the image reference its release runs.
 */
export async function deployHello(p: TestPlatform, app: string): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), "hangar-bench-hello-"));
  try {
    await run("cp", ["-r", `${helloDir}/.`, work]);
    writeFileSync(
      join(p.home, "local.json"),
      JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
    );
    const hangar = async (args: string[]) => {
      const r = await runHangar(args, { cwd: work, env: { HANGAR_HOME: p.home }, timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`hangar ${args.join(" ")} failed: ${r.stderr}${r.stdout}`);
    };
    await hangar(["launch", "--name", app, "--yes", "--no-deploy"]);
    await hangar(["deploy"]);
    const [release] = await p.api.ok<Array<{ image: string }>>("GET", `/apps/${app}/releases`);
    if (!release?.image) throw new Error(`the deploy of ${app} made no release with an image`);
    return release.image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A podman of the bench's own (store, run state, temp folder) holding one image. */
export class BenchPodman {
  private constructor(
    private readonly bin: string,
    private readonly dir: string,
    private readonly imageId: string,
  ) {}

  /** Exports `image` (a reference with a digest) from the platform's registry and pulls it into a new store. */
  static async open(p: TestPlatform, image: string): Promise<BenchPodman> {
    const bin = ensurePodman();
    // Lower case: podman names an image pulled from an OCI layout after the layout's path.
    const dir = join(tmpdir(), `hangar-bench-podman-${randomBytes(6).toString("hex")}`);
    await mkdir(dir, { mode: 0o700 });
    try {
      const layout = join(dir, "layout");
      const nc = await p.connectNats();
      try {
        const registry = await ImageRegistry.open(nc, await BlobStore.open(nc));
        await exportImageLayout(registry, image.slice(image.indexOf("@") + 1) as Digest, layout, "hello");
      } finally {
        await nc.close();
      }
      const pulled = await new BenchPodman(bin, dir, "").podman(["pull", "--quiet", `oci:${layout}:hello`]);
      return new BenchPodman(bin, dir, pulled.trim());
    } catch (err) {
      await new BenchPodman(bin, dir, "").close().catch(() => {});
      throw err;
    }
  }

  /** Runs one container of the image, detached; the ms `podman run -d` took. */
  async runDetached(name: string): Promise<number> {
    const t0 = performance.now();
    await this.podman([
      "run",
      "-d",
      "--name",
      name,
      "--init",
      "--network",
      "none",
      "--memory",
      "256m",
      "--ulimit",
      `nofile=${OPEN_FILES}:${OPEN_FILES}`,
      "--ulimit",
      "nproc=4096:4096",
      "--cpus",
      "1",
      "-e",
      "PORT=8080",
      this.imageId,
    ]);
    return performance.now() - t0;
  }

  /** Removes containers (killed at once), untimed. */
  async remove(names: string[]): Promise<void> {
    await this.podman(["rm", "--force", "--time", "0", ...names]);
  }

  /**
   * Removes every container and the image, then the store's folders: once what the store still has
   * mounted is unmounted (its overlay folder is a bind mount of itself), deepest first.
   */
  async close(): Promise<void> {
    try {
      if (this.imageId !== "") {
        await this.podman(["rm", "--all", "--force", "--time", "0"]);
        await this.podman(["rmi", "--all", "--force"]);
      }
    } finally {
      const mounted = readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .map((line) => line.split(" ")[4] ?? "")
        .filter((at) => at.startsWith(`${this.dir}/`))
        .sort((a, b) => b.length - a.length);
      for (const at of mounted) await run("umount", [at]);
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  private async podman(args: string[]): Promise<string> {
    const { stdout } = await run(
      this.bin,
      [
        "--root",
        join(this.dir, "root"),
        "--runroot",
        join(this.dir, "runroot"),
        "--tmpdir",
        join(this.dir, "tmp"),
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
        ...args,
      ],
      { maxBuffer: 1 << 24 },
    );
    return stdout;
  }
}
