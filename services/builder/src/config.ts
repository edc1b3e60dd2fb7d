import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineServiceConfig, partlySharedSettings, port, setting } from "@hangar/service";
import { z } from "zod";
import { DEFAULT_BUILD_NETWORK_CIDR } from "./network/build-network.js";

/** The builder's settings (docs/configuration.md). */
export const config = defineServiceConfig("builder", {
  HANGAR_REGISTRY_UPSTREAMS: partlySharedSettings.HANGAR_REGISTRY_UPSTREAMS,
  HANGAR_LAYERS_DIR: partlySharedSettings.HANGAR_LAYERS_DIR,
  // The master key opens the orgs' registry credentials (HANGAR_REGISTRY_AUTH) FROM pulls with.
  HANGAR_SECRETS_KEY: partlySharedSettings.HANGAR_SECRETS_KEY,
  HANGAR_SECRETS_KEY_FILE: partlySharedSettings.HANGAR_SECRETS_KEY_FILE,
  HANGAR_SECRETS_PREVIOUS_KEYS: partlySharedSettings.HANGAR_SECRETS_PREVIOUS_KEYS,
  HANGAR_BUILDER_OPS_PORT: port(4284, { description: "the builder's /health and /metrics" }),
  HANGAR_BUILDER_DIR: setting(z.string().default(join(tmpdir(), "hangar-builder")), {
    description: "where builds unpack contexts and assemble layers",
    shownDefault: "`$TMPDIR/hangar-builder`",
  }),
  HANGAR_BUILDER_MAX_CONTEXT_MB: setting(z.coerce.number().positive().default(2048), {
    description: "the most a build context may unpack to, in MiB (a larger one fails its build)",
  }),
  HANGAR_BUILDER_CONCURRENCY: setting(z.coerce.number().int().min(1).default(2), {
    description: "builds this builder runs at once (a stuck one holds back only its own slot)",
  }),
  HANGAR_BUILDER_BUILD_TIMEOUT_S: setting(z.coerce.number().int().min(1).default(1800), {
    description:
      "the most a build may last, in seconds: then it fails with `build timed out` and its RUN processes are killed (a request's `timeout` may ask for less)",
  }),
  HANGAR_BUILDER_NETWORK: setting(z.enum(["default", "none"]).default("default"), {
    description:
      "network of RUN steps: `default` gives each build a network namespace of its own, NATed out, reaching nothing of the host or private networks; `none` runs every RUN without network and fails `RUN --network=default`",
  }),
  HANGAR_BUILDER_MEMORY_MB: setting(z.coerce.number().int().min(64).default(4096), {
    description: "memory each build's RUN steps may use together, in MiB (over it, the kernel kills one)",
  }),
  HANGAR_BUILDER_CPUS: setting(z.coerce.number().positive().default(2), {
    description: "CPU each build's RUN steps may use, in cores (1.5: one and a half)",
  }),
  HANGAR_BUILDER_PIDS: setting(z.coerce.number().int().min(16).default(4096), {
    description: "processes and threads each build's RUN steps may have at once",
  }),
  HANGAR_BUILDER_CA_FILE: setting(z.string().default(""), {
    description:
      "a PEM bundle (public roots included) that RUN steps with network trust, for a host whose egress goes through a TLS-inspecting proxy: bound read-only at /run/hangar/ca-certificates.crt and named by NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, PIP_CERT and GIT_SSL_CAINFO in the step's environment only; empty: the image's own CAs",
  }),
  HANGAR_BUILDER_NETWORK_CIDR: setting(z.string().default(DEFAULT_BUILD_NETWORK_CIDR), {
    description:
      "the IPv4 block builds' network namespaces take their /30s from: keep it clear of the host's networks and HANGAR_HOST_AGENT_MACHINE_CIDR",
  }),
});
