import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BUILD_CA_PATH, leftMountPoints, mountPoints, runStepSpec } from "./run-sandbox.js";

describe("a RUN step's mount points", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "run-sandbox-"));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it("are each mount's destination and the folders leading to it, deepest first", () => {
    const spec = {
      mounts: [{ destination: "/proc" }, { destination: "/dev/pts" }, { destination: "/run/hangar-init" }],
    };
    const points = mountPoints(spec);
    expect(new Set(points)).toEqual(new Set(["proc", "dev", "dev/pts", "run", "run/hangar-init"]));
    expect(points.indexOf("run/hangar-init")).toBeLessThan(points.indexOf("run"));
    expect(points.indexOf("dev/pts")).toBeLessThan(points.indexOf("dev"));
  });

  it("are left out of the layer only when crun made them and the step left them empty", async () => {
    // crun made run/ and the empty bind target in it, and an empty proc/.
    await mkdir(join(root, "run"));
    await writeFile(join(root, "run/hangar-init"), "");
    await mkdir(join(root, "proc"));
    // The step wrote into dev/, and the image already had etc/resolv.conf.
    await mkdir(join(root, "dev"));
    await writeFile(join(root, "dev/made-by-step"), "x");
    await mkdir(join(root, "etc"));
    await writeFile(join(root, "etc/resolv.conf"), "");
    const existed = new Map([
      ["run/hangar-init", false],
      ["etc/resolv.conf", true],
      ["proc", false],
      ["dev", false],
      ["run", false],
      ["etc", true],
      ["sys", false],
    ]);
    expect(await leftMountPoints(root, existed)).toEqual(new Set(["run/hangar-init", "proc", "run"]));
  });
});

describe("a RUN step's trust of the platform's CA bundle", () => {
  const base = {
    rootfs: "/tmp/root",
    argv: ["npm", "ci"],
    cwd: "/",
    user: { uid: 0, gid: 0 },
    range: { hostId: 100000, size: 65536 },
  };
  const envOf = (spec: { process?: { env?: string[] } }) => spec.process?.env ?? [];
  const bindsOf = (spec: { mounts?: Array<{ source?: string; destination: string }> }) =>
    (spec.mounts ?? []).map((m) => `${m.source}->${m.destination}`);

  it("binds the bundle read-only and names it to the usual clients when the build network has one", async () => {
    const spec = await runStepSpec({
      ...base,
      env: ["PATH=/usr/bin", "SSL_CERT_FILE=/etc/ssl/mine.pem"],
      network: "default",
      buildNetwork: {
        netnsPath: "/run/netns/b",
        resolvConf: "/tmp/r.conf",
        caFile: "/etc/ssl/certs/host.crt",
      },
    });
    expect(bindsOf(spec)).toContain(`/etc/ssl/certs/host.crt->${BUILD_CA_PATH}`);
    expect(envOf(spec)).toContain(`NODE_EXTRA_CA_CERTS=${BUILD_CA_PATH}`);
    // The image's own ENV wins over the platform's.
    expect(envOf(spec)).toContain("SSL_CERT_FILE=/etc/ssl/mine.pem");
    expect(envOf(spec)).not.toContain(`SSL_CERT_FILE=${BUILD_CA_PATH}`);
  });

  it("is absent without network, and without a bundle", async () => {
    const none = await runStepSpec({ ...base, env: [], network: "none" });
    const plain = await runStepSpec({
      ...base,
      env: [],
      network: "default",
      buildNetwork: { netnsPath: "/run/netns/b", resolvConf: "/tmp/r.conf" },
    });
    for (const spec of [none, plain]) {
      expect(bindsOf(spec).some((b) => b.endsWith(BUILD_CA_PATH))).toBe(false);
      expect(envOf(spec).some((e) => e.startsWith("NODE_EXTRA_CA_CERTS="))).toBe(false);
    }
  });
});

describe("a RUN step's /etc/hosts", () => {
  it("is bound read-only from a file naming localhost and the step's hostname, with network or without", async () => {
    const base = {
      rootfs: "/tmp/root",
      argv: ["true"],
      env: [],
      cwd: "/",
      user: { uid: 0, gid: 0 },
      range: { hostId: 100000, size: 65536 },
    };
    for (const spec of [
      await runStepSpec({ ...base, network: "none" }),
      await runStepSpec({
        ...base,
        network: "default",
        buildNetwork: { netnsPath: "/run/netns/b", resolvConf: "/tmp/r.conf" },
      }),
    ]) {
      const mounts = (spec.mounts ?? []) as Array<{
        source?: string;
        destination: string;
        options?: string[];
      }>;
      const hosts = mounts.find((m) => m.destination === "/etc/hosts");
      expect(hosts?.options).toContain("ro");
      const text = await readFile(hosts?.source ?? "", "utf8");
      expect(text).toMatch(/^127\.0\.0\.1\tlocalhost hangar-build$/m);
      expect(text).toMatch(/^::1\tlocalhost /m);
      expect(spec.hostname).toBe("hangar-build");
    }
  });
});
