// Issue 11, acceptance 3 on the whole platform: an image layer holding setuid-root programs and
// device nodes (tests/fixtures/setuid-device-image.ts) runs as two machines, one with the image's
// USER node (1000), one without USER (the image's root). Through the API's exec, which runs as the
// machine's user: the setuid-root `id` run by the node user reports that user, not root; the
// setuid-root `cat` cannot read a root-only file; and the layer's device nodes cannot be opened,
// neither by the node user nor by the image's root, while the runtime's own /dev/null can.
// Making the image needs root (mknod, files owned by 0:0).
import { BlobStore, ImageRegistry } from "@hangar/oci";
import type { HostExecReply } from "@hangar/service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOSTILE, writeSetuidDeviceImage } from "../fixtures/setuid-device-image.js";
import { startTestPlatform, type TestPlatform } from "../platform/harness.js";

const APP = "hostile";

let p: TestPlatform;
const machines = { asNode: "", asRoot: "" };
type Machine = keyof typeof machines;

/** Runs `command` inside the machine through `POST .../exec`; the exec itself must be answered. */
async function inside(machine: Machine, command: string[]): Promise<HostExecReply> {
  const res = await p.api.call<HostExecReply>("POST", `/apps/${APP}/machines/${machines[machine]}/exec`, {
    command,
    timeout: 20,
  });
  if (res.status !== 200)
    throw new Error(`exec ${command.join(" ")}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** What opening `path` for reading says inside the machine: "OK" or the error code. */
async function openResult(machine: Machine, path: string): Promise<string> {
  const fs = 'require("node:fs")';
  const script = `try { ${fs}.closeSync(${fs}.openSync(${JSON.stringify(path)}, "r")); console.log("OK"); } catch (err) { console.log(err.code); }`;
  return (await inside(machine, ["node", "-e", script])).stdout.trim();
}

describe.runIf(process.getuid?.() === 0)(
  "a layer's setuid-root programs and device nodes, inside the machine",
  () => {
    beforeAll(async () => {
      p = await startTestPlatform();
      const nc = await p.connectNats();
      try {
        const image = await writeSetuidDeviceImage(await ImageRegistry.open(nc, await BlobStore.open(nc)));
        await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
        for (const variant of ["asNode", "asRoot"] as const) {
          const m = await p.api.ok<{ id: string }>("POST", `/apps/${APP}/machines`, {
            config: { image: image[variant], guest: { cpu_kind: "shared", cpus: 1, memory_mb: 256 } },
          });
          machines[variant] = m.id;
          await p.api.ok("GET", `/apps/${APP}/machines/${m.id}/wait?state=started&timeout=60`);
        }
      } finally {
        await nc.close();
      }
    }, 240_000);

    afterAll(async () => {
      await p?.close();
    });

    it("holds the layer's files as it made them, and exec runs as each machine's user", async () => {
      const stat = (path: string) =>
        `const s = require("node:fs").statSync(${JSON.stringify(path)}); console.log(s.uid, (s.mode & 0o4000) !== 0, s.isCharacterDevice());`;
      // Without these bits inside, the refusals below would prove nothing.
      expect((await inside("asNode", ["node", "-e", stat(HOSTILE.suidId)])).stdout).toBe("0 true false\n");
      expect((await inside("asNode", ["node", "-e", stat(HOSTILE.null)])).stdout).toBe("0 false true\n");
      expect((await inside("asNode", ["id", "-u"])).stdout).toBe("1000\n");
      expect((await inside("asRoot", ["id", "-u"])).stdout).toBe("0\n");
    });

    it("the setuid-root id, run by the node user, does not gain root", async () => {
      const res = await inside("asNode", [HOSTILE.suidId]);
      expect(res.exit_code).toBe(0);
      expect(res.stdout).toMatch(/^uid=1000\(node\) gid=1000\(node\)/);
      expect(res.stdout).not.toMatch(/euid=0/);
      expect((await inside("asNode", [HOSTILE.suidId, "-u"])).stdout).toBe("1000\n");
    });

    it("the setuid-root cat, run by the node user, cannot read a file only root may read", async () => {
      const res = await inside("asNode", [HOSTILE.suidCat, HOSTILE.secret]);
      expect(res.exit_code).not.toBe(0);
      expect(res.stdout).toBe("");
      expect(res.stderr).toMatch(/Permission denied/);
    });

    it("the layer's device nodes cannot be opened, by the node user or by the image's root", async () => {
      for (const machine of ["asNode", "asRoot"] as const) {
        for (const device of [HOSTILE.null, HOSTILE.mem]) {
          expect(await openResult(machine, device), `${machine} opening ${device}`).toMatch(
            /^(EACCES|EPERM)$/,
          );
        }
        // The runtime's standard devices still work: the refusal is the layer's, not any device's.
        expect(await openResult(machine, "/dev/null"), `${machine} opening /dev/null`).toBe("OK");
      }
    });
  },
);
