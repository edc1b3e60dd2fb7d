// Runs deploy/k8s/overlays/podman for real on this machine with `podman kube play` (Debian's podman
// 4.3): renders the overlay with a per-run kustomization (fresh NATS users, keys and ports), plays NATS
// and Postgres, then every other Deployment and the proxy's DaemonSet pod with the Service names as
// host aliases, waits for each pod's readiness probe, and tears everything down again: pods, their
// volumes, podman secrets, the network, the temp folder. What podman cannot run and how this stands in
// for it: scripts/podman-play.ts and deploy/k8s/README.md ("Run it with podman").
//
//   node --conditions=source --import tsx scripts/kube-play.ts    play, wait for health, print, tear down
//   ... scripts/kube-play.ts --keep                                 the same, but keep it up until Ctrl-C
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { type NatsCredentials, natsUsers, writeNatsCredentials } from "@hangar/service";
import { freePort } from "@hangar/testkit";
import { parseAllDocuments, stringify } from "yaml";
import { repoRoot } from "./platform.js";
import {
  forPlay,
  inlineEnvFrom,
  type KubeObject,
  type PlayWorkload,
  podmanPlan,
  podNames,
  podsOf,
  readinessOf,
} from "./podman-play.js";

export const PODMAN_OVERLAY = join(repoRoot, "deploy", "k8s", "overlays", "podman");

/** Why podman cannot run here, or undefined when it can (podman and kubectl present, a pod starts). */
export function podmanUnavailable(): string | undefined {
  for (const [tool, args] of [
    ["podman", ["--version"]],
    ["kubectl", ["version", "--client"]],
  ] as const) {
    try {
      execFileSync(tool, args, { stdio: "ignore" });
    } catch {
      return `${tool} is not installed (scripts/bootstrap.sh installs it on Debian)`;
    }
  }
  if (process.getuid?.() !== 0)
    return "podman kube play here runs as root (privileged pods, host networking)";
  return undefined;
}

export interface KubePlayOptions {
  /** The host agents' ids: each gets a NATS user (its agent runs beside the play as a host process). */
  hostIds?: readonly string[];
  /** The gateway's HANGAR_DIR_IMAGE_ROOTS (folders whose `dir:` images may run), none by default. */
  dirImageRoots?: readonly string[];
  /** Play only these workloads (by name; NATS and Postgres always): to look at a part. */
  only?: readonly string[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface PlayedPod {
  name: string;
  workload: string;
  /** The pod's address: on the play's network, or 127.0.0.1 for a hostNetwork pod. */
  ip: string;
}

export interface KubePlay {
  /** NATS as the host reaches it (the NATS pod's address on the play's network). */
  natsUrl: string;
  natsCreds: NatsCredentials;
  /** HANGAR_GATEWAY_TOKEN_KEY of the played gateways (base64). */
  tokenKey: string;
  /** HANGAR_SECRETS_KEY of the played services (base64): host agents beside the play need it too. */
  secretsKey: string;
  /** One Machines API URL per gateway pod. */
  gatewayUrls: string[];
  /** The proxy's public port on 127.0.0.1 (its DaemonSet pod runs on the host's network). */
  proxyPort: number;
  pods: PlayedPod[];
  /** What the play left out and why. */
  leftOut: string[];
  /** The last lines of a pod's containers' logs (for a failing test's message). */
  logs(pod: string, lines?: number): Promise<string>;
  /** Removes everything the play made. Idempotent. */
  down(): Promise<void>;
}

function run(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 300_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The per-run kustomization: the podman overlay with this run's NATS users, keys and proxy ports. */
export function runKustomization(o: {
  overlay: string;
  credsDir: string;
  users: readonly string[];
  tokenKey: string;
  secretsKey: string;
  postgresPassword: string;
  proxyPort: number;
  proxyOpsPort: number;
  dirImageRoots: readonly string[];
}): string {
  const proxyEnv = [
    ["HANGAR_PROXY_PORT", o.proxyPort],
    ["HANGAR_PROXY_OPS_PORT", o.proxyOpsPort],
    // On the host's network: loopback only.
    ["HANGAR_BIND_HOST", "127.0.0.1"],
  ];
  const k = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    resources: [o.overlay],
    secretGenerator: [
      {
        name: "nats-auth",
        behavior: "replace",
        files: [`authorization.conf=${join(o.credsDir, "authorization.conf")}`, "routes.conf=routes.conf"],
      },
      {
        name: "nats-creds",
        behavior: "replace",
        files: o.users.map((u) => `${u}.nk=${join(o.credsDir, `${u}.nk`)}`),
      },
      {
        name: "hangar-keys",
        behavior: "replace",
        literals: [`HANGAR_GATEWAY_TOKEN_KEY=${o.tokenKey}`, `HANGAR_SECRETS_KEY=${o.secretsKey}`],
      },
      {
        name: "postgres-credentials",
        behavior: "merge",
        literals: [`POSTGRES_PASSWORD=${o.postgresPassword}`],
      },
    ],
    patches: [
      {
        target: { kind: "DaemonSet", name: "proxy" },
        patch: stringify({
          apiVersion: "apps/v1",
          kind: "DaemonSet",
          metadata: { name: "proxy" },
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    name: "proxy",
                    ports: [
                      { name: "http", containerPort: o.proxyPort },
                      { name: "ops", containerPort: o.proxyOpsPort },
                    ],
                    env: proxyEnv.map(([name, value]) => ({ name, value: String(value) })),
                  },
                ],
              },
            },
          },
        }),
      },
      {
        target: { kind: "Deployment", name: "gateway" },
        patch: stringify({
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "gateway" },
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    name: "gateway",
                    env: [{ name: "HANGAR_DIR_IMAGE_ROOTS", value: o.dirImageRoots.join(":") }],
                  },
                ],
              },
            },
          },
        }),
      },
    ],
  };
  return stringify(k);
}

/**
 * podman cannot expand `$(VAR)` in env values: in a Pod, a value referring to variables set literally
 * earlier in the same container (or in its Secret env, resolved from `secrets`) is expanded here, as
 * Kubernetes would.
 */
export function expandEnvRefs(
  obj: KubeObject,
  secrets: ReadonlyMap<string, Record<string, string>>,
): KubeObject {
  const spec = obj.spec as { containers: { env?: EnvVar[] }[] };
  for (const c of spec.containers) {
    const known: Record<string, string> = {};
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef as { name: string; key: string } | undefined;
      if (ref) {
        const v = secrets.get(ref.name)?.[ref.key];
        if (v !== undefined) known[e.name] = v;
      }
      if (e.value === undefined) continue;
      e.value = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => known[name] ?? m);
      known[e.name] = e.value;
    }
  }
  return obj;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

/** Infrastructure played first: the Service names the other pods reach it by. */
const FIRST = new Map<string, string[]>([
  ["nats", ["nats"]],
  ["postgres", ["postgres"]],
]);

/** Renders, plays and waits for every pod of the podman overlay; `down()` removes it all. */
export async function kubePlay(options: KubePlayOptions = {}): Promise<KubePlay> {
  const log = options.log ?? (() => undefined);
  const hostIds = options.hostIds ?? [];
  const id = randomBytes(4).toString("hex");
  const dir = await mkdtemp(join(tmpdir(), "hangar-kube-play-"));
  // podman's default rlimits (nofile and nproc 1048576) are above what this sandbox may set: the run's own
  // containers.conf keeps them at the caller's limits.
  const conf = join(dir, "containers.conf");
  const nofile = execFileSync("sh", ["-c", "ulimit -Hn"]).toString().trim();
  await writeFile(
    conf,
    `[containers]\ndefault_ulimits = ["nofile=${nofile}:${nofile}", "nproc=4096:4096"]\n`,
  );
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const network = `hangar-play-${id}`;
  const playFiles: string[] = [];
  const pods: string[] = [];
  const volumes: string[] = [];
  const secrets: string[] = [];
  let downDone: Promise<void> | undefined;
  const podman = (...args: string[]) => run("podman", args, env);

  const teardownSync = () => {
    for (const pod of pods) execQuiet("podman", ["pod", "rm", "-f", "-t", "0", pod], env);
    for (const v of volumes) execQuiet("podman", ["volume", "rm", "-f", v], env);
    for (const s of secrets) execQuiet("podman", ["secret", "rm", s], env);
    execQuiet("podman", ["network", "rm", "-f", network], env);
    execQuiet("rm", ["-rf", dir], env);
  };
  const onExit = () => teardownSync();
  process.once("exit", onExit);
  // Killed by a signal (Ctrl-C, a test runner's SIGTERM): tear down, then die of it as before, unless
  // someone else handles the signal (then they own shutdown, and "exit" covers us).
  const onSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    teardownSync();
    process.kill(process.pid, signal);
  };
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const signal of signals) process.once(signal, onSignal);

  const down = () => {
    downDone ??= (async () => {
      for (const pod of pods) {
        // Containers with their anonymous (emptyDir) volumes, then the pod.
        const ids = (await podman("ps", "-aq", "--filter", `pod=${pod}`).catch(() => ""))
          .split("\n")
          .filter(Boolean);
        if (ids.length > 0) await podman("rm", "-f", "-v", "-t", "0", ...ids).catch(() => "");
        await podman("pod", "rm", "-f", "-t", "0", pod).catch(() => "");
      }
      for (const v of volumes) await podman("volume", "rm", "-f", v).catch(() => "");
      for (const s of secrets) await podman("secret", "rm", s).catch(() => "");
      await podman("network", "rm", "-f", network).catch(() => "");
      await rm(dir, { recursive: true, force: true });
      process.off("exit", onExit);
      for (const signal of signals) process.off(signal, onSignal);
    })();
    return downDone;
  };

  try {
    // This run's NATS users (the services' and its host agents'), keys and ports.
    const credsDir = join(dir, "creds");
    const natsCreds = await writeNatsCredentials(credsDir, natsUsers(hostIds));
    await writeFile(join(credsDir, "authorization.conf"), natsCreds.authorization, { mode: 0o600 });
    // One NATS node: no routes (the overlay's nats.conf has no cluster block and does not include it).
    await writeFile(join(dir, "routes.conf"), "# one node: no routes\n");
    const tokenKey = randomBytes(32).toString("base64");
    const secretsKey = randomBytes(32).toString("base64");
    const proxyPort = await freePort();
    const proxyOpsPort = await freePort();
    const serviceUsers = natsUsers([]).map((u) => u.user);
    await writeFile(
      join(dir, "kustomization.yaml"),
      runKustomization({
        // kustomize takes only relative paths, inside the run's folder for files.
        overlay: relative(dir, PODMAN_OVERLAY),
        credsDir: "creds",
        users: serviceUsers,
        tokenKey,
        secretsKey,
        postgresPassword: randomBytes(12).toString("hex"),
        proxyPort,
        proxyOpsPort,
        dirImageRoots: options.dirImageRoots ?? [],
      }),
    );
    log(`rendering ${PODMAN_OVERLAY}`);
    const rendered = await run("kubectl", ["kustomize", dir], env);
    const objects = parseAllDocuments(rendered)
      .map((d) => d.toJS() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null);
    const plan = podmanPlan(objects, { hostProcesses: ["host-agent"] });
    const only = options.only;
    if (only) plan.workloads = plan.workloads.filter((w) => FIRST.has(w.name) || only.includes(w.name));
    log(`left out: ${plan.leftOut.join("; ")}`);
    // The images come from this machine's storage (`pnpm images`): nothing is pulled.
    const images = new Set(plan.workloads.flatMap((w) => workloadImages(w)));
    const missing: string[] = [];
    for (const image of images) {
      if (
        !(await podman("image", "exists", image).then(
          () => true,
          () => false,
        ))
      )
        missing.push(image);
    }
    if (missing.length > 0) {
      throw new Error(
        `not in this machine's container storage: ${missing.join(", ")}; make them with \`pnpm images\``,
      );
    }

    // Secrets as podman secrets (JSON, for secretKeyRef env) and as ConfigMaps (their volumes).
    const secretValues = new Map<string, Record<string, string>>();
    for (const s of plan.secrets) {
      const name = `${s.name}`;
      const file = join(dir, `secret-${name}.json`);
      await writeFile(file, s.json, { mode: 0o600 });
      await podman("secret", "create", name, file);
      secrets.push(name);
      const decoded = JSON.parse(s.json) as Record<string, string>;
      secretValues.set(
        s.name,
        Object.fromEntries(Object.entries(decoded).map(([k, v]) => [k, Buffer.from(v, "base64").toString()])),
      );
    }
    for (const cm of plan.configMaps) volumes.push(cm.metadata.name);
    for (const c of plan.claims) volumes.push(c.metadata.name);
    // What a run killed with SIGKILL left under these names (a reused NATS volume would hold another
    // run's streams): this run's names, so gone before it plays.
    for (const w of plan.workloads) {
      for (const pod of podNames(w)) await podman("pod", "rm", "-f", "-t", "0", pod).catch(() => "");
    }
    for (const v of volumes) await podman("volume", "rm", "-f", v).catch(() => "");
    await podman("network", "create", network);

    const playedPods: PlayedPod[] = [];
    const play = async (name: string, workloads: KubeObject[], hostNetwork: boolean) => {
      if (workloads.length === 0) return;
      // The pods' own emptyDirs are named volumes too (podsOf): they go with the run.
      for (const pod of workloads) {
        for (const v of (pod.spec as { volumes?: { name: string; emptyDir?: unknown }[] }).volumes ?? []) {
          if (v.emptyDir !== undefined) {
            await podman("volume", "rm", "-f", v.name).catch(() => "");
            volumes.push(v.name);
          }
        }
      }
      const file = join(dir, `play-${name}.yaml`);
      const claims = name === "infra" ? plan.claims : [];
      await writeFile(
        file,
        [...plan.configMaps, ...claims, ...workloads].map((o) => stringify(forPlay(o))).join("---\n"),
      );
      playFiles.push(file);
      const args = [
        "kube",
        "play",
        "--log-driver",
        "k8s-file",
        ...(hostNetwork ? [] : ["--network", network]),
        file,
      ];
      log(`podman ${args.join(" ")}`);
      await podman(...args);
    };
    const register = async (w: PlayWorkload, hostNetwork: boolean) => {
      for (const pod of podNames(w)) {
        const ip = hostNetwork ? "127.0.0.1" : await podIp(podman, pod, network);
        playedPods.push({ name: pod, workload: w.name, ip });
      }
    };
    const track = (w: PlayWorkload) => pods.push(...podNames(w));

    const first = plan.workloads.filter((w) => FIRST.has(w.name));
    const rest = plan.workloads.filter((w) => !FIRST.has(w.name));
    const isHostNet = (w: PlayWorkload) =>
      (w.deployment.spec as { template: { spec: { hostNetwork?: boolean } } }).template.spec.hostNetwork ===
      true;
    for (const w of first) track(w);
    await play(
      "infra",
      first.flatMap((w) =>
        podsOf(w).map((pod) => expandEnvRefs(inlineEnvFrom(pod, plan.configMaps), secretValues)),
      ),
      false,
    );
    for (const w of first) await register(w, false);
    const aliases: Record<string, string> = {};
    for (const w of first) {
      const ip = playedPods.find((p) => p.workload === w.name)?.ip;
      if (ip) for (const host of FIRST.get(w.name) ?? []) aliases[host] = ip;
    }
    const natsIp = aliases.nats;
    if (!natsIp) throw new Error("the overlay has no nats workload");
    // NATS and Postgres have exec probes: ready here when their first port takes connections.
    for (const w of first) {
      const port = firstPort(w);
      const ip = aliases[w.name];
      if (port !== undefined && ip) {
        log(`waiting for ${w.name} at ${ip}:${port}`);
        await waitTcp(ip, port, 120_000);
      }
    }

    const onNet = rest.filter((w) => !isHostNet(w));
    const onHost = rest.filter(isHostNet);
    for (const w of rest) track(w);
    await play(
      "services",
      onNet.flatMap((w) =>
        podsOf(w, aliases).map((pod) =>
          expandEnvRefs(inlineEnvFrom(pod, plan.configMaps, aliases), secretValues),
        ),
      ),
      false,
    );
    if (onHost.length > 0) {
      await play(
        "host",
        onHost.flatMap((w) =>
          podsOf(w, aliases).map((pod) =>
            expandEnvRefs(inlineEnvFrom(pod, plan.configMaps, aliases), secretValues),
          ),
        ),
        true,
      );
    }
    for (const w of onNet) await register(w, false);
    for (const w of onHost) await register(w, true);

    // Ready when every pod's readinessProbe answers, as the kubelet would check it.
    for (const w of rest) {
      const probe = readinessOf(w);
      if (!probe) continue;
      for (const p of playedPods.filter((pp) => pp.workload === w.name)) {
        const url = `http://${p.ip}:${probe.port}${probe.path}`;
        log(`waiting for ${p.name} at ${url}`);
        await waitHttp(url, 120_000, () => containerLogs(podman, p.name, 40));
      }
    }
    const gateway = plan.workloads.find((w) => w.name === "gateway");
    const gatewayPort = gateway ? gatewayApiPort(gateway) : 0;
    return {
      natsUrl: `nats://${natsIp}:4222`,
      natsCreds,
      tokenKey,
      secretsKey,
      gatewayUrls: playedPods
        .filter((p) => p.workload === "gateway")
        .map((p) => `http://${p.ip}:${gatewayPort}`),
      proxyPort,
      pods: playedPods,
      leftOut: plan.leftOut,
      logs: (pod, lines = 60) => containerLogs(podman, pod, lines),
      down,
    };
  } catch (err) {
    const detail = await Promise.all(pods.map((p) => containerLogs(podman, p, 15).catch(() => ""))).catch(
      () => [],
    );
    await down();
    throw new Error(`${(err as Error).message}\n${detail.filter(Boolean).join("\n")}`);
  }
}

function execQuiet(cmd: string, args: string[], env: NodeJS.ProcessEnv): void {
  try {
    execFileSync(cmd, args, { env, stdio: "ignore", timeout: 60_000 });
  } catch {
    // Best effort on the way out: the rest must still go.
  }
}

function firstPort(w: PlayWorkload): number | undefined {
  const spec = (
    w.deployment.spec as { template: { spec: { containers: { ports?: { containerPort: number }[] }[] } } }
  ).template.spec;
  return spec.containers[0]?.ports?.[0]?.containerPort;
}

function workloadImages(w: PlayWorkload): string[] {
  const spec = (w.deployment.spec as { template: { spec: { containers: { image?: string }[] } } }).template
    .spec;
  return spec.containers.flatMap((c) => (c.image ? [c.image] : []));
}

function gatewayApiPort(w: PlayWorkload): number {
  const c = (
    w.deployment.spec as {
      template: { spec: { containers: { ports?: { name?: string; containerPort: number }[] }[] } };
    }
  ).template.spec.containers[0];
  const port = c?.ports?.find((p) => p.name === "api")?.containerPort;
  if (port === undefined) throw new Error("the gateway Deployment has no `api` port");
  return port;
}

async function podIp(
  podman: (...a: string[]) => Promise<string>,
  pod: string,
  network: string,
): Promise<string> {
  const infra = (await podman("pod", "inspect", pod, "--format", "{{.InfraContainerID}}")).trim();
  const ip = (
    await podman("inspect", infra, "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`)
  ).trim();
  if (!ip) throw new Error(`pod ${pod} has no address on ${network}`);
  return ip;
}

async function containerLogs(
  podman: (...a: string[]) => Promise<string>,
  pod: string,
  lines: number,
): Promise<string> {
  const names = (await podman("ps", "-a", "--filter", `pod=${pod}`, "--format", "{{.Names}} {{.Status}}"))
    .split("\n")
    .filter((l) => l && !l.includes("-infra "));
  const out: string[] = [];
  for (const line of names) {
    const name = line.split(" ")[0] ?? "";
    const text = await podman("logs", "--tail", String(lines), name).catch((e: Error) => e.message);
    out.push(`--- ${line}\n${text}`);
  }
  return out.join("\n");
}

async function waitTcp(host: string, port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import("node:net");
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.end();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs / 1000} s`);
}

async function waitHttp(url: string, timeoutMs: number, detail: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(300);
  }
  throw new Error(
    `${url} did not answer 2xx within ${timeoutMs / 1000} s:\n${await detail().catch(() => "")}`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const why = podmanUnavailable();
  if (why) {
    process.stderr.write(`kube-play: cannot run: ${why}\n`);
    process.exit(1);
  }
  const started = Date.now();
  const played = await kubePlay({ log: (l) => process.stdout.write(`[kube-play] ${l}\n`) });
  process.stdout.write(
    `[kube-play] ${played.pods.length} pods ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${played.pods
      .map((p) => `${p.name} ${p.ip}`)
      .join(
        ", ",
      )}\n[kube-play] gateways ${played.gatewayUrls.join(" ")}, proxy 127.0.0.1:${played.proxyPort}\n`,
  );
  if (process.argv.includes("--keep")) {
    process.stdout.write("[kube-play] up; Ctrl-C tears it down\n");
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
  }
  await played.down();
  process.stdout.write("[kube-play] torn down\n");
}
