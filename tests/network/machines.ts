// Machines for the network tests and bench: the node base image plus the programs of ./programs
// (server, probe, holder) under /app, created on the platform and looked into through the API's exec.
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobStore, ImageRegistry } from "@hangar/oci";
import type { HostExecReply } from "@hangar/service";
import { pushNodeLayerImage } from "../fixtures/node-layer-image.js";
import type { TestPlatform } from "../platform/harness.js";

const PROGRAMS = ["server.mjs", "probe.mjs", "holder.mjs"];

/** The machine's HTTP port (server.mjs): answers "<app> <machine id>\n". */
export const HTTP_PORT = 8080;
/** The machine's TCP echo port (server.mjs). */
export const ECHO_PORT = 8081;

/** The command that runs server.mjs. */
export const SERVE = ["node", "/app/server.mjs"];

/** Pushes the node base image plus /app/{server,probe,holder}.mjs to the platform's registry; returns its reference. */
export async function pushNetworkImage(p: TestPlatform): Promise<string> {
  const nc = await p.connectNats();
  const work = await mkdtemp(join(tmpdir(), "hangar-network-image-"));
  try {
    const registry = await ImageRegistry.open(nc, await BlobStore.open(nc));
    const root = join(work, "root");
    await mkdir(join(root, "app"), { recursive: true });
    for (const program of PROGRAMS) {
      await copyFile(join(import.meta.dirname, "programs", program), join(root, "app", program));
    }
    const refs = await pushNodeLayerImage(registry, {
      repository: "network-probe",
      root,
      work,
      variants: { v1: {} },
    });
    return refs.v1;
  } finally {
    await nc.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** What GET machine says of a machine's network. */
export interface MachineNetwork {
  id: string;
  region: string;
  /** The 6PN address when the machine has one. */
  private_ip: string;
}

/**
 * Creates a machine of `image` running `cmd` (in `region`, which pins its host; a shared-cpu-1x
 * unless `cpuKind` says performance) and waits until it is started.
 */
export async function createMachine(
  p: TestPlatform,
  app: string,
  o: { image: string; cmd: string[]; region?: string; cpuKind?: "shared" | "performance"; cpus?: number },
): Promise<MachineNetwork> {
  const guest = { cpu_kind: o.cpuKind ?? "shared", cpus: o.cpus ?? 1, memory_mb: 256 };
  const created = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, {
    ...(o.region ? { region: o.region } : {}),
    config: { image: o.image, init: { exec: o.cmd }, guest },
  });
  await p.api.ok("GET", `/apps/${app}/machines/${created.id}/wait?state=started&timeout=60`);
  return p.api.ok<MachineNetwork>("GET", `/apps/${app}/machines/${created.id}`);
}

/** Runs `command` in the machine through the API's exec; fails unless it ran and exited 0. */
export async function inside(p: TestPlatform, app: string, id: string, command: string[]): Promise<string> {
  const res = await p.api.call<HostExecReply>("POST", `/apps/${app}/machines/${id}/exec`, {
    command,
    timeout: 60,
  });
  if (res.status !== 200 || res.body.exit_code !== 0) {
    throw new Error(`exec ${command.join(" ")} in ${app}/${id}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.stdout;
}

/** A probe.mjs question: names to resolve, addresses to connect to, URLs to fetch, a name to watch, loads to run. */
export interface ProbeAsk {
  timeoutMs?: number;
  resolve?: Array<{ name: string; type: "A" | "AAAA" | "TXT" }>;
  connect?: Array<{ host: string; port: number }>;
  fetch?: string[];
  waitGone?: { name: string; address: string; pollMs?: number; forMs?: number };
  load?: { url: string; connections?: number; durationMs?: number };
  dnsLoad?: { server: string; name: string; rate?: number; durationMs?: number; warmupMs?: number };
}

/** probe.mjs's answer. */
export interface ProbeResult {
  resolve: Array<{ name: string; type: string; records?: string[]; error?: string }>;
  connect: Array<{ host: string; port: number; connected: boolean; error?: string }>;
  fetch: Array<{ url: string; status?: number; body?: string; error?: string }>;
  waitGone?: { goneAt?: number; error?: string };
  load?: { requests: number; rps: number };
  dnsLoad?: {
    sent: number;
    answered: number;
    /** Never answered within the timeout (counted at the timeout in the percentiles). */
    lost: number;
    /** Answers with an error code or no record. */
    empty: number;
    seconds: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
  };
}

/** Runs probe.mjs in the machine. */
export async function probe(p: TestPlatform, app: string, id: string, ask: ProbeAsk): Promise<ProbeResult> {
  return JSON.parse(await inside(p, app, id, ["node", "/app/probe.mjs", JSON.stringify(ask)])) as ProbeResult;
}
