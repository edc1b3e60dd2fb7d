import { cpus, hostname, totalmem } from "node:os";
import { defineServiceConfig, partlySharedSettings, port, setting } from "@hangar/service";
import { z } from "zod";

/** The host agent's settings (docs/configuration.md). */
export const config = defineServiceConfig("host-agent", {
  HANGAR_HOST_AGENT_ID: setting(
    z
      .string()
      // Host ids are subject tokens: no dots, no wildcards.
      .regex(/^[A-Za-z0-9_-]+$/, "a host id: letters, digits, _ and - (it is a NATS subject token)")
      .default(`host-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}`),
    { description: "this host's id", legacy: "HANGAR_HOST_ID", shownDefault: "`host-<hostname>`" },
  ),
  HANGAR_HOST_AGENT_STATE_DIR: setting(z.string().optional(), {
    description: "the agent's machine folders, layer cache and logs",
    legacy: "HANGAR_HOST_STATE_DIR",
    shownDefault: "`$HANGAR_HOME/hosts/<host id>`",
  }),
  HANGAR_HOST_AGENT_OPS_PORT: port(0, {
    description: "the agent's /health and /metrics; 0 picks a free port",
    legacy: "HANGAR_HOST_OPS_PORT",
  }),
  HANGAR_HOST_AGENT_DRIVER: setting(z.enum(["process", "sandbox", "auto"]).default("auto"), {
    description:
      "whether OCI images run: sandbox (they must: the agent stops if the host cannot), process (only dir: images) or auto (OCI images when the host can); every machine runs under crun",
    legacy: "HANGAR_HOST_DRIVER",
  }),
  // netns by default, as on Fly: an app listens on its service's internal_port whether or not it
  // reads PORT, two machines can use the same port, and a machine cannot reach the host's loopback
  // services (NATS, Postgres). Sandboxing needs root for overlayfs already, so namespaces cost
  // nothing more. `host` shares the host's network: the app must listen on $PORT, and it keeps the
  // host's outbound network (namespaces get no NAT).
  HANGAR_HOST_AGENT_SANDBOX_NETWORK: setting(z.enum(["netns", "host"]).default("netns"), {
    description: "a sandboxed machine's network: its own namespace (netns) or the host's",
    legacy: "HANGAR_SANDBOX_NETWORK",
  }),
  HANGAR_HOST_AGENT_CPUS: setting(
    z.coerce
      .number()
      .int()
      .positive()
      .default(cpus().length * 16),
    {
      description: "shared CPUs this host offers (overcommitted as on Fly: 16 per core)",
      legacy: "HANGAR_HOST_CPUS",
      shownDefault: "16 x cores",
    },
  ),
  HANGAR_HOST_AGENT_MEMORY_MB: setting(
    z.coerce
      .number()
      .int()
      .positive()
      .default(Math.floor(totalmem() / 1024 / 1024)),
    {
      description: "memory this host offers, in MiB",
      legacy: "HANGAR_HOST_MEMORY_MB",
      shownDefault: "total memory",
    },
  ),
  HANGAR_HOST_AGENT_ADDRESS: setting(z.string().min(1).default("127.0.0.1"), {
    description: "the address the proxy reaches this host's machines on",
    legacy: "HANGAR_HOST_ADDRESS",
  }),
  // dir: images are off unless listed; the host agent refuses to run them too, as defence in depth.
  HANGAR_DIR_IMAGE_ROOTS: partlySharedSettings.HANGAR_DIR_IMAGE_ROOTS,
  HANGAR_HOST_AGENT_STOP_MACHINES: setting(z.stringbool().default(false), {
    description:
      "stop this host's machines when the agent stops (npm start); otherwise the next agent adopts them",
    legacy: "HANGAR_HOST_STOP_MACHINES",
  }),
});
