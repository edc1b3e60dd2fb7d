// One gateway replica for int tests that run two on one nats-server: its own NATS connection,
// event store, catalog and machine commands, serving the API on a real HTTP port.
import { EventStore } from "@hangar/eventstore";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { OrgDirectory } from "../src/http/authz.js";
import { type ApiDeps, createApi, startApiServer } from "../src/http/mod.js";
import { StreamBackend } from "../src/machines/backend.js";
import { Catalog } from "../src/machines/catalog.js";
import { MachineCommands } from "../src/machines/commands.js";
import type { MachineVolumes } from "../src/volumes/mounts.js";

export interface GatewayReplica {
  nc: NatsConnection;
  store: EventStore;
  catalog: Catalog;
  commands: MachineCommands;
  url: string;
  close(): Promise<void>;
}

const noVolumes: MachineVolumes = { volumesOf: () => [], attach: async () => {}, detach: async () => {} };

/**
 * Starts a replica on `natsUrl` with the token root `key`; `directory` says which org each app is in
 * (given the replica's catalog), `extra` adds API dependencies (idempotency keys, fresh reads...).
 */
export async function startGatewayReplica(opts: {
  natsUrl: string;
  key: Uint8Array;
  directory: (catalog: Catalog) => OrgDirectory;
  extra?: (parts: { nc: NatsConnection; store: EventStore; catalog: Catalog }) => Promise<Partial<ApiDeps>>;
}): Promise<GatewayReplica> {
  const nc = await connect({ servers: opts.natsUrl, timeout: 10_000 });
  const store = await EventStore.connect(nc);
  const catalog = await Catalog.start(store);
  const commands = new MachineCommands(nc, store, catalog, "local", noVolumes);
  const api = createApi({
    backend: new StreamBackend(catalog, commands),
    auth: { key: opts.key, directory: opts.directory(catalog), isRevoked: () => false },
    logger: createLogger("gateway", { level: "silent" }),
    ...(opts.extra ? await opts.extra({ nc, store, catalog }) : {}),
  });
  const http = await startApiServer(api, { port: 0 });
  return {
    nc,
    store,
    catalog,
    commands,
    url: http.url,
    close: async () => {
      await http.close();
      await catalog.stop();
      await nc.close();
    },
  };
}
