import { rm } from "node:fs/promises";
import { join } from "node:path";
import { hostsStream, machinesStream, secretsStream, volumesStream } from "@hangar/domain";
import {
  BlobStore,
  ImageRegistry,
  LayerStore,
  overlaySupported,
  parseUpstreams,
  platformBaseImages,
  prepareCrunHost,
  REGISTRY_AUTH_SECRET,
  registryCredentials,
} from "@hangar/oci";
import { masterKeysFromConfig } from "@hangar/secrets";
import { AppSecrets, OrgSecrets, runService } from "@hangar/service";
import { HostAgent } from "./agent.js";
import { config, hostIdOf } from "./config.js";
import { ResolverProcess } from "./dns/resolver-process.js";
import { ProcessDriver } from "./driver/mod.js";
import { ImagePuller } from "./images.js";
import { HostNetwork, RESOLVER_ADDRESS } from "./network/host-network.js";
import { OrgNetworks } from "./network/org-networks.js";
import { netnsSupported, sandboxCapability } from "./sandbox-support.js";
import { VolumeDisks } from "./volumes/disk.js";
import { defaultDiskGb, HostVolumes } from "./volumes/host-volumes.js";

await runService({
  name: "host-agent",
  config,
  streams: [hostsStream, machinesStream, secretsStream, volumesStream],
  hostId: hostIdOf,
  async start({ nc, store, logger, registry, config }) {
    const hostId = hostIdOf(config);
    const stateDir = config.HANGAR_HOST_AGENT_STATE_DIR ?? join(config.HANGAR_HOME, "hosts", hostId);
    const mode = config.HANGAR_HOST_AGENT_DRIVER;
    const sandbox = await sandboxCapability(mode, config.HANGAR_HOST_AGENT_SANDBOX_NETWORK, {
      runtime: prepareCrunHost,
      overlay: overlaySupported,
      netns: netnsSupported,
    });
    // Asked for by name, the sandbox must work: better no agent than one that fails every OCI start.
    if (mode === "sandbox" && !sandbox.ok)
      throw new Error(`HANGAR_HOST_AGENT_DRIVER=sandbox: ${sandbox.reason}`);
    // Machines with namespaces of their own live on the host's network: veths, 6PN routes, firewall.
    const sixpn =
      sandbox.ok && sandbox.network === "netns"
        ? {
            hostNetwork: await HostNetwork.open({
              ...(config.HANGAR_HOST_AGENT_NETNS ? { netns: config.HANGAR_HOST_AGENT_NETNS } : {}),
              hostId,
              machineCidr: config.HANGAR_HOST_AGENT_MACHINE_CIDR,
              egressDeny: config.HANGAR_HOST_AGENT_EGRESS_DENY,
              controlSources: config.HANGAR_HOST_AGENT_CONTROL_SOURCES,
              logger,
            }),
            orgNetworks: await OrgNetworks.open(nc, { replicas: config.HANGAR_STREAM_REPLICAS }),
          }
        : undefined;
    // Every such machine's nameserver, on the host's network (HostNetwork.open put its address there).
    const dns = sixpn
      ? await ResolverProcess.open({
          ...(config.HANGAR_HOST_AGENT_NETNS ? { netns: config.HANGAR_HOST_AGENT_NETNS } : {}),
          address: RESOLVER_ADDRESS,
          hostId,
          region: config.HANGAR_REGION,
          regionOrder: config.HANGAR_HOST_AGENT_REGION_ORDER,
          logger,
        })
      : undefined;
    // The layer cache lives beside the machine folders: the driver skips folders without a run.json.
    const disks = new VolumeDisks({
      dir: config.HANGAR_HOST_AGENT_VOLUMES_DIR ?? join(stateDir, "volumes"),
      mountsDir: join(stateDir, "volume-mounts"),
      freezeTimeoutMs: config.HANGAR_HOST_AGENT_VOLUMES_FREEZE_TIMEOUT_MS,
    });
    const driver = new ProcessDriver({
      stateDir,
      volumes: disks,
      ...(sixpn ? { network: sixpn.hostNetwork } : {}),
    });
    // The master key is read here, once; the agent's environment holds at most the key file's path.
    const keys = masterKeysFromConfig(config);
    // The orgs' registry credentials (HANGAR_REGISTRY_AUTH), read when a machine's image is pulled.
    const orgSecrets = await OrgSecrets.start(store, keys);
    let images: ImagePuller | undefined;
    if (sandbox.ok) {
      // Whichever service opens the blob bucket first creates it: each asks for the configured replicas.
      const blobs = await BlobStore.open(nc, { replicas: config.HANGAR_STREAM_REPLICAS });
      const imageRegistry = await ImageRegistry.open(nc, blobs, { replicas: config.HANGAR_STREAM_REPLICAS });
      // Layers an earlier agent spooled for a cache fill it did not finish: its next pull fetches them again.
      const pullsDir = join(stateDir, "pulls");
      await rm(pullsDir, { recursive: true, force: true });
      images = new ImagePuller({
        registry: imageRegistry,
        layers: new LayerStore(config.HANGAR_LAYERS_DIR ?? join(stateDir, "layers"), blobs),
        logger,
        spoolDir: pullsDir,
        metrics: registry,
        upstreams: parseUpstreams(config.HANGAR_REGISTRY_UPSTREAMS),
        credentials: registryCredentials((org) => orgSecrets.read(org, REGISTRY_AUTH_SECRET)),
        // A machine of `node:20-slim` on a host without upstreams: the base is made here as for a build.
        bases: platformBaseImages(imageRegistry),
      });
    }
    const suspend = driver.suspendMode();
    logger.info(
      suspend,
      suspend.mode === "signals"
        ? "suspend uses SIGSTOP/SIGCONT: no cgroup freezer"
        : `suspend freezes each machine's cgroup (${suspend.mode})`,
    );
    logger.info(
      { mode, sandbox },
      sandbox.ok ? "OCI images run sandboxed" : "OCI images cannot run on this host",
    );
    const secrets = await AppSecrets.start(store, keys, {
      registry,
      metric: {
        name: "hangar_host_secret_inject_seconds",
        help: "Time secrets add to one machine start: catching up with the app's secrets and opening them",
      },
    });
    const volumes = await HostVolumes.open({
      nc,
      store,
      hostId,
      logger,
      registry,
      disks,
      extendIntervalMs: config.HANGAR_HOST_AGENT_VOLUMES_EXTEND_INTERVAL_MS,
      replicas: config.HANGAR_STREAM_REPLICAS,
    });
    const agent = new HostAgent({
      nc,
      store,
      driver,
      logger,
      registry,
      hostId,
      region: config.HANGAR_REGION,
      cpus: config.HANGAR_HOST_AGENT_CPUS,
      memoryMb: config.HANGAR_HOST_AGENT_MEMORY_MB,
      address: config.HANGAR_HOST_AGENT_ADDRESS,
      tunnelPort: config.HANGAR_HOST_AGENT_TUNNEL_PORT,
      secrets,
      volumes,
      diskGb: config.HANGAR_HOST_AGENT_VOLUMES_DISK_GB ?? (await defaultDiskGb(disks)),
      ...dedicationOf(config.HANGAR_HOST_AGENT_DEDICATION_ID, config.HANGAR_HOST_AGENT_DEDICATION_ORG),
      sandbox,
      ...(images ? { images } : {}),
      dirImageRoots: config.HANGAR_DIR_IMAGE_ROOTS,
      ...(config.HANGAR_HOST_AGENT_UNDERLAY_IP ? { underlayIp: config.HANGAR_HOST_AGENT_UNDERLAY_IP } : {}),
      ...(sixpn ?? {}),
      ...(dns ? { dns } : {}),
    });
    await agent.start();
    logger.info({ host_id: hostId, state_dir: stateDir }, "host agent started");
    return {
      health: () => agent.health(),
      async stop() {
        await agent.stop();
        await secrets.stop();
        await orgSecrets.stop();
        // Machines keep running without names until the next agent opens the resolver again.
        await dns?.close();
        // A stopped agent leaves its machines running for the next one to adopt, unless told otherwise
        // (npm start stops the whole platform, machines included).
        if (config.HANGAR_HOST_AGENT_STOP_MACHINES) {
          await Promise.allSettled(
            driver.running().map((m) => driver.stop(m.machineId, { signal: "SIGTERM", timeoutMs: 5_000 })),
          );
        }
        // Its tails, watchers and timer; the machines it leaves running are adopted by the next agent.
        await driver.close();
      },
    };
  },
});

/** The host's dedication group and its organization: both, or neither. */
function dedicationOf(
  id: string | undefined,
  org: string | undefined,
): { dedicationId?: string; dedicationOrg?: string } {
  if (!id) return {};
  if (!org) {
    throw new Error(
      "HANGAR_HOST_AGENT_DEDICATION_ID needs HANGAR_HOST_AGENT_DEDICATION_ORG: the organization whose machines may use the group",
    );
  }
  return { dedicationId: id, dedicationOrg: org };
}
