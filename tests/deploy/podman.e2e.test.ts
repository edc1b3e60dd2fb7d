// Acceptance 2 of issue 18: deploy/k8s/overlays/podman run for real with `podman kube play` from this
// machine's images (`pnpm images`): NATS, Postgres, two replicas of every control-plane Deployment and
// the proxy's DaemonSet pod, with a host agent beside them as a host process in a test network
// namespace (scripts/kube-play.ts says why). An app and a machine are made through the played
// gateways' Machines API, and the played proxy serves a request from the machine.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mintToken } from "@hangar/auth";
import { createNetworkTopology, freePort, type NetworkTopology } from "@hangar/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImages } from "../../scripts/images.js";
import { type KubePlay, kubePlay, podmanUnavailable } from "../../scripts/kube-play.js";
import { type HostAgentHandle, startHostAgent } from "../../scripts/platform.js";
import { removeNetns } from "../../services/host-agent/src/driver/netns.js";
import { listMachineIds } from "../../services/host-agent/src/driver/state.js";
import { removeStateDir } from "../../services/host-agent/test/harness.js";
import { ApiClient, helloConfig, helloDir } from "../platform/harness.js";

const unavailable = podmanUnavailable();
const HOST_ID = "podman-1";

/** GET through the proxy on 127.0.0.1 as `<app>.localhost` (node:http: fetch may not set Host). */
function viaProxy(port: number, app: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, headers: { host: `${app}.localhost:${port}` } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(unavailable !== undefined)(
  `podman kube play of the podman overlay${unavailable ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    let topology: NetworkTopology | undefined;
    let played: KubePlay | undefined;
    let agent: HostAgentHandle | undefined;
    let home: string | undefined;
    const started = Date.now();

    beforeAll(async () => {
      const log = (line: string) => process.stderr.write(`[kube-play] ${line.slice(0, 400)}\n`);
      // The images of this checkout (`pnpm images`: built only when the workspace changed, cached per host).
      await buildImages({ onProgress: log });
      log(`images ready after ${(Date.now() - started) / 1000} s`);
      topology = await createNetworkTopology({ hosts: 1, internet: false });
      played = await kubePlay({ hostIds: [HOST_ID], dirImageRoots: [helloDir], log });
      process.stderr.write(
        `[kube-play] ${played.pods.length} pods ready after ${(Date.now() - started) / 1000} s\n`,
      );
      // The host agent's DaemonSet pod beside the play, as a host process (see scripts/kube-play.ts).
      home = mkdtempSync(join(tmpdir(), "hangar-podman-agent-"));
      const secretsKeyFile = join(home, "secrets-key");
      writeFileSync(secretsKeyFile, played.secretsKey, { mode: 0o600 });
      const host = topology.hosts[0];
      if (!host) throw new Error("the topology has no host");
      agent = await startHostAgent({
        home,
        hostId: HOST_ID,
        natsUrl: played.natsUrl,
        natsCreds: played.natsCreds,
        tokenKey: played.tokenKey,
        hostOpsPort: await freePort(),
        hostCpus: 8,
        hostMemoryMb: 8 * 256,
        dirImageRoots: [helloDir],
        secretsKeyFile,
        logLevel: "warn",
        // Not this agent's business (the played pods serve them).
        gatewayPort: 0,
        proxyPort: played.proxyPort,
        monitorPort: 0,
        placementOpsPort: 0,
        proxyOpsPort: 0,
        env: { "host-agent": { HANGAR_HOST_AGENT_STOP_MACHINES: "1", ...host.env } },
      });
    }, 1_800_000);

    afterAll(async () => {
      // Everything goes even when a step fails: machines, the agent, every pod, volume, secret and network.
      const steps: (() => Promise<unknown>)[] = [
        async () => agent?.stop(),
        async () => {
          if (!agent) return;
          for (const id of await listMachineIds(agent.hostStateDir)) await removeNetns(id);
          await removeStateDir(agent.hostStateDir);
        },
        async () => played?.down(),
        async () => topology?.close(),
        async () => {
          if (home) rmSync(home, { recursive: true, force: true });
        },
      ];
      for (const step of steps)
        await step().catch((err: unknown) => process.stderr.write(`teardown: ${err}\n`));
      process.stderr.write(`[kube-play] the whole file took ${(Date.now() - started) / 1000} s\n`);
    }, 300_000);

    it("plays two replicas of every control-plane Deployment and the proxy's DaemonSet pod", () => {
      const p = played as KubePlay;
      const count = (workload: string) => p.pods.filter((pod) => pod.workload === workload).length;
      for (const w of [
        "gateway",
        "placement",
        "scheduler",
        "monitor",
        "volume",
        "postgres-manager",
        "webhooks",
        "builder",
      ]) {
        expect(count(w), w).toBe(2);
      }
      expect(count("proxy")).toBe(1);
      expect(count("nats")).toBe(1);
      expect(p.gatewayUrls).toHaveLength(2);
      expect(p.leftOut.some((l) => l.startsWith("DaemonSet host-agent"))).toBe(true);
    });

    it("refuses the Machines API without a token, with a Fly-style error", async () => {
      const p = played as KubePlay;
      const anonymous = new ApiClient(p.gatewayUrls[0] ?? "", "");
      const res = await anonymous.call<{ error?: string }>(
        "POST",
        "/apps",
        { app_name: "nope", org_slug: "personal" },
        {
          token: null,
        },
      );
      expect(res.status).toBe(401);
      expect(typeof res.body.error).toBe("string");
    });

    it("makes an app and a machine through a played gateway, the other replica serves it, and the proxy serves a request from it", async () => {
      const p = played as KubePlay;
      const token = mintToken(new Uint8Array(Buffer.from(p.tokenKey, "base64")), {
        id: "tok_podman_operator",
        kind: "operator",
      });
      const [url0, url1] = p.gatewayUrls;
      const api0 = new ApiClient(url0 ?? "", token);
      const api1 = new ApiClient(url1 ?? "", token);
      await api0.ok("POST", "/orgs", { slug: "personal" });
      const app = "podman-hello";
      // One client's writes through one replica: a replica's read model follows another's writes a
      // moment later (an app made through one gateway was once not found by the other at once).
      expect((await api0.call("POST", "/apps", { app_name: app, org_slug: "personal" })).status).toBe(201);
      const machine = await api0.ok<{ id: string }>("POST", `/apps/${app}/machines`, {
        config: helloConfig(),
      });
      const wait = await api0.call(
        "GET",
        `/apps/${app}/machines/${machine.id}/wait?state=started&timeout=60`,
      );
      expect(wait.status, JSON.stringify(wait.body)).toBe(200);
      // The other replica serves the same machine (a liveness bound, not a timing claim).
      let seen = await api1.call<{ state?: string }>("GET", `/apps/${app}/machines/${machine.id}`);
      for (const until = Date.now() + 30_000; seen.status !== 200 && Date.now() < until; ) {
        await sleep(250);
        seen = await api1.call<{ state?: string }>("GET", `/apps/${app}/machines/${machine.id}`);
      }
      expect(seen.status, JSON.stringify(seen.body)).toBe(200);
      // Served by the played proxy from the machine on the agent's host (a liveness bound, not a timing claim).
      const deadline = Date.now() + 60_000;
      let last = { status: 0, body: "" };
      while (Date.now() < deadline) {
        last = await viaProxy(p.proxyPort, app, "/hi").catch((err: Error) => ({
          status: 0,
          body: err.message,
        }));
        if (last.status === 200) break;
        await sleep(250);
      }
      expect(last.status, last.body).toBe(200);
      expect(last.body).toContain(machine.id);
    }, 180_000);
  },
);
