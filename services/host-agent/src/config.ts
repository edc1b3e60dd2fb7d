import { isIP, isIPv4, isIPv6 } from "node:net";
import { cpus, hostname, totalmem } from "node:os";
import { defineServiceConfig, hostIdFromName, partlySharedSettings, port, setting } from "@hangar/service";
import { z } from "zod";

/** An address or `address/length` block, IPv4 or IPv6. */
const cidrSchema = z.string().refine((cidr) => {
  const [address = "", length, extra] = cidr.split("/");
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (length === undefined) return true;
  return /^\d{1,3}$/.test(length) && Number(length) <= (family === 4 ? 32 : 128);
}, "an IPv4 or IPv6 address or block, e.g. 10.0.0.0/8 or fc00::/7");

/** A comma-separated list of blocks (blanks and empty entries dropped), each checked by `item`; empty by default. */
function commaList(item: typeof cidrSchema) {
  return z
    .string()
    .default("")
    .transform((list) =>
      list
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ""),
    )
    .pipe(z.array(item));
}

/** The host agent's settings (docs/configuration.md). */
export const config = defineServiceConfig("host-agent", {
  HANGAR_HOST_AGENT_ID: setting(
    z
      .string()
      // Host ids are subject tokens: no dots, no wildcards.
      .regex(/^[A-Za-z0-9_-]+$/, "a host id: letters, digits, _ and - (it is a NATS subject token)")
      .optional(),
    {
      description: "this host's id",
      legacy: "HANGAR_HOST_ID",
      shownDefault: "made from HANGAR_HOST_AGENT_NODE_NAME, else `host-<hostname>`",
    },
  ),
  HANGAR_HOST_AGENT_NODE_NAME: setting(z.string().min(1).optional(), {
    description:
      "the Kubernetes node the agent runs on (spec.nodeName); when HANGAR_HOST_AGENT_ID is unset the id is made from it, each character other than a letter, digit, _ or - becoming - (ip-10-0-0-1.ec2.internal is ip-10-0-0-1-ec2-internal)",
  }),
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
  HANGAR_HOST_AGENT_NETNS: setting(
    z
      .string()
      .regex(
        /^[A-Za-z0-9_.-]+$/,
        "a network namespace's name (/run/netns/<name>): letters, digits, _ . and -",
      )
      .refine((name) => name !== "." && name !== "..", "a network namespace's name, not . or ..")
      .optional(),
    {
      description:
        "the network namespace that is this host's network (machines' veths, 6PN routes, firewall, DNS); unset, the agent's own",
      shownDefault: "unset (the agent's own namespace)",
    },
  ),
  HANGAR_HOST_AGENT_UNDERLAY_IP: setting(
    z
      .string()
      .refine((ip) => isIPv6(ip), "an IPv6 address")
      .optional(),
    {
      description:
        "this host's IPv6 address other hosts route its machines' 6PN traffic to; unset on a single host",
      shownDefault: "unset (no routes from other hosts)",
    },
  ),
  HANGAR_HOST_AGENT_MACHINE_CIDR: setting(
    cidrSchema
      // Each machine takes a /30 of it.
      .refine(
        (cidr) => isIPv4(cidr.split("/")[0] ?? "") && Number(cidr.split("/")[1] ?? 32) <= 30,
        "an IPv4 block of /30 or larger, e.g. 172.30.0.0/16",
      )
      .default("172.30.0.0/16"),
    {
      description:
        "the IPv4 block this host's machines get their /30s from (reached by the proxy and checks)",
    },
  ),
  HANGAR_HOST_AGENT_EGRESS_DENY: setting(commaList(cidrSchema), {
    description:
      "comma-separated addresses and blocks machines may not reach, besides the ones they never reach: private, loopback, link-local, multicast and reserved blocks, the machine CIDR and the host's own addresses ([networking](networking.md#settings))",
    shownDefault: "none",
  }),
  // Where the proxy, the gateway's tunnels and checks run on this host, their packets to machines
  // are the host's own (output path) and need no entry; from anywhere else they are forwarded and
  // must come from a listed source: nothing else on the uplink or underlay reaches a machine's v4.
  HANGAR_HOST_AGENT_CONTROL_SOURCES: setting(
    // The firewall's control_sources set is IPv4: an IPv6 entry is refused here, not at the first machine.
    commaList(cidrSchema.refine((cidr) => isIPv4(cidr.split("/")[0] ?? ""), "an IPv4 address or block")),
    {
      description:
        "comma-separated IPv4 addresses and blocks of control-plane services on other hosts or namespaces (proxy, gateway) allowed to reach machines' IPv4 addresses through this host",
      shownDefault: "none",
    },
  ),
  HANGAR_HOST_AGENT_REGION_ORDER: setting(
    z
      .string()
      .default("")
      .transform((list) =>
        list
          .split(",")
          .map((region) => region.trim().toLowerCase())
          .filter((region) => region !== ""),
      ),
    {
      description:
        "comma-separated regions nearest to this host first, for `top<N>.nearest.of.<app>.internal` (after this host and its region; regions not listed follow alphabetically)",
      shownDefault: "unset (other regions alphabetically)",
    },
  ),
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
  HANGAR_HOST_AGENT_TUNNEL_PORT: port(0, {
    description:
      "the tunnel listener (on HANGAR_HOST_AGENT_ADDRESS) the gateway connects to for `hangar ssh console` (port tunnels go from the gateway to the machine); 0 picks a free port",
  }),
  // dir: images are off unless listed; the host agent refuses to run them too, as defence in depth.
  HANGAR_DIR_IMAGE_ROOTS: partlySharedSettings.HANGAR_DIR_IMAGE_ROOTS,
  HANGAR_SECRETS_KEY: partlySharedSettings.HANGAR_SECRETS_KEY,
  HANGAR_SECRETS_KEY_FILE: partlySharedSettings.HANGAR_SECRETS_KEY_FILE,
  HANGAR_SECRETS_PREVIOUS_KEYS: partlySharedSettings.HANGAR_SECRETS_PREVIOUS_KEYS,
  HANGAR_REGISTRY_UPSTREAMS: partlySharedSettings.HANGAR_REGISTRY_UPSTREAMS,
  HANGAR_LAYERS_DIR: partlySharedSettings.HANGAR_LAYERS_DIR,
  HANGAR_HOST_AGENT_VOLUMES_DIR: setting(z.string().min(1).optional(), {
    description: "where this host keeps its volumes' ext4 image files",
    shownDefault: "`<state dir>/volumes`",
  }),
  HANGAR_HOST_AGENT_VOLUMES_DISK_GB: setting(z.coerce.number().int().min(0).optional(), {
    description: "room for volumes this host offers placement, in GiB",
    shownDefault: "the free space of the volumes folder plus what its volumes hold",
  }),
  HANGAR_HOST_AGENT_DEDICATION_ID: setting(z.string().optional(), {
    description:
      "the host dedication group this host belongs to (Fly's host_dedication_id): only machines whose guest asks for it are placed here; unset, a shared host",
  }),
  HANGAR_HOST_AGENT_DEDICATION_ORG: setting(z.string().optional(), {
    description:
      "the organization (slug) whose machines may use this host's dedication group; required with HANGAR_HOST_AGENT_DEDICATION_ID",
  }),
  HANGAR_HOST_AGENT_VOLUMES_FREEZE_TIMEOUT_MS: setting(z.coerce.number().int().positive().default(10_000), {
    description:
      "how long a snapshot may keep a mounted volume frozen (fsfreeze) while its image is copied; past it the volume is thawed and the snapshot fails",
  }),
  HANGAR_HOST_AGENT_VOLUMES_EXTEND_INTERVAL_MS: setting(z.coerce.number().int().positive().default(30_000), {
    description:
      "how often mounted volumes are checked against their mount's auto-extend threshold (extend_threshold_percent)",
  }),
  HANGAR_HOST_AGENT_STOP_MACHINES: setting(z.stringbool().default(false), {
    description:
      "stop this host's machines when the agent stops (npm start); otherwise the next agent adopts them",
    legacy: "HANGAR_HOST_STOP_MACHINES",
  }),
});

/** This host's id: HANGAR_HOST_AGENT_ID, else made from the node's name, else `host-<hostname>`. */
export function hostIdOf(c: {
  HANGAR_HOST_AGENT_ID?: string | undefined;
  HANGAR_HOST_AGENT_NODE_NAME?: string | undefined;
}): string {
  return (
    c.HANGAR_HOST_AGENT_ID ??
    (c.HANGAR_HOST_AGENT_NODE_NAME !== undefined
      ? hostIdFromName(c.HANGAR_HOST_AGENT_NODE_NAME)
      : `host-${hostIdFromName(hostname())}`)
  );
}
