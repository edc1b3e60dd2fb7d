import { STATICS_BUCKET } from "@hangar/config";
import { appDecider, appsStream, buildsStream, machinesStream, secretsStream } from "@hangar/domain";
import {
  ImageNotFoundError,
  openObjectBucket,
  parseUpstreams,
  REGISTRY_AUTH_SECRET,
  registryCredentials,
} from "@hangar/oci";
import { masterKeysFromConfig } from "@hangar/secrets";
import { AggregateView, MachinesView, OrgSecrets, runService } from "@hangar/service";
import { orgImageResolver } from "./app-images.js";
import { Builder } from "./builder.js";
import { config } from "./config.js";
import { BuildNetworks } from "./network/build-network.js";
import { openBuildDeps } from "./platform.js";
import { checkBuilderHost } from "./preflight.js";
import { StaticsExtractor } from "./statics-extractor.js";

await runService({
  name: "builder",
  config,
  streams: [buildsStream, appsStream, secretsStream, machinesStream],
  async start({ nc, store, logger, registry, config }) {
    // A host without what RUN steps need fails here, saying what is missing, rather than at each build.
    await checkBuilderHost(config.HANGAR_BUILDER_NETWORK);
    const dataDir = config.HANGAR_BUILDER_DIR;
    const upstreams = parseUpstreams(config.HANGAR_REGISTRY_UPSTREAMS);
    // The orgs' registry credentials (HANGAR_REGISTRY_AUTH), read when a FROM pulls; the master key is read once.
    const keys = masterKeysFromConfig(config);
    const orgSecrets = await OrgSecrets.start(store, keys);
    // The apps' secrets: what RUN --mount=type=secret reads when the build was sent no secret of that id.
    const appSecrets = await OrgSecrets.start(store, keys, { kind: "app" });
    const { deps, contexts, resolveImageFor } = await openBuildDeps(
      nc,
      dataDir,
      {},
      config.HANGAR_STREAM_REPLICAS,
      {
        upstreams,
        credentials: registryCredentials((org) => orgSecrets.read(org, REGISTRY_AUTH_SECRET)),
        ...(config.HANGAR_LAYERS_DIR ? { layersDir: config.HANGAR_LAYERS_DIR } : {}),
      },
    );
    // Which org holds each app: a build may not take its base from another org's app repository.
    const apps = await AggregateView.start(store, appsStream, appDecider);
    await apps.caughtUp;
    const orgOf = (app: string): string | undefined => {
      const a = apps.get(app);
      return a?.status === "created" ? a.orgSlug : undefined;
    };
    const builder = await Builder.start({
      nc,
      store,
      logger,
      deps,
      resolveImageFor,
      upstreams,
      contexts,
      dataDir,
      registry,
      maxContextBytes: config.HANGAR_BUILDER_MAX_CONTEXT_MB * 2 ** 20,
      // The build secrets a request carries are sealed under the master key.
      ...(keys ? { keys } : {}),
      appSecret: (app, name) => appSecrets.read(app, name),
      concurrency: config.HANGAR_BUILDER_CONCURRENCY,
      buildTimeoutMs: config.HANGAR_BUILDER_BUILD_TIMEOUT_S * 1000,
      network: config.HANGAR_BUILDER_NETWORK,
      networks: new BuildNetworks(config.HANGAR_BUILDER_NETWORK_CIDR, {
        ...(config.HANGAR_BUILDER_CA_FILE !== "" ? { caFile: config.HANGAR_BUILDER_CA_FILE } : {}),
      }),
      limits: {
        memoryBytes: config.HANGAR_BUILDER_MEMORY_MB * 2 ** 20,
        cpus: config.HANGAR_BUILDER_CPUS,
        pids: config.HANGAR_BUILDER_PIDS,
      },
      orgOf,
    });
    // [[statics]]: the files each machine config names, taken out of its image for the proxy.
    const statics = new StaticsExtractor({
      bucket: await openObjectBucket(nc, STATICS_BUCKET, { replicas: config.HANGAR_STREAM_REPLICAS }),
      blobs: deps.blobs,
      // As a build's FROM: an image of another org's app is not found, so its files are never served.
      resolve: (app, ref) => {
        const org = orgOf(app);
        if (org === undefined) throw new ImageNotFoundError(ref, `app ${app} does not exist`);
        return orgImageResolver({
          org,
          orgOf,
          registry: deps.registry,
          upstreams,
          resolve: resolveImageFor(org),
        })(ref);
      },
      logger,
    });
    const machines = MachinesView.create(store);
    machines.subscribe((change) => statics.onMachineChange(change));
    await machines.follow();
    logger.info({ builder_id: builder.builderId, data_dir: dataDir }, "builder started");
    return {
      health: () => builder.health(),
      stop: async () => {
        await builder.stop();
        await machines.stop();
        await statics.stop();
        await apps.stop();
        await orgSecrets.stop();
        await appSecrets.stop();
      },
    };
  },
});
