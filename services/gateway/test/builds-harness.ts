import { randomBytes } from "node:crypto";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  type BuildCommand,
  type BuildEvent,
  type BuildState,
  buildDecider,
  buildsStream,
  releasesStream,
} from "@hangar/domain";
import { CommandHandler, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { AggregateView } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";
import { StreamBuildsBackend } from "../src/builds/backend.js";
import { BuildCatalog } from "../src/builds/catalog.js";
import { BuildContexts } from "../src/builds/contexts.js";
import { EdgeBundles } from "../src/edge/bundles.js";
import { createApi } from "../src/http/api.js";
import type { MachinesBackend } from "../src/http/backend.js";
import { ApiError } from "../src/http/errors.js";
import { StreamReleasesBackend } from "../src/releases/backend.js";
import { ReleaseCatalog } from "../src/releases/catalog.js";
import { testAuth } from "./auth-fixture.js";

const { auth: AUTH, token: TOKEN, key: KEY } = testAuth();

// These tests never reach the Machines API: every call of it fails loudly.
const noMachines = new Proxy({} as MachinesBackend, {
  get: () => async () => {
    throw ApiError.of("unknown", "the machines backend is not part of this test");
  },
});

/**
 * The gateway's API with real builds, releases and edge bundles backends on the run's nats-server,
 * over streams and buckets named with `prefix` so that test files never share them. `orgs` puts apps
 * in orgs of their own (every app is in "personal" otherwise).
 */
export async function startBuildsGateway(
  prefix: string,
  opts: { maxContextBytes?: number; orgs?: Record<string, string> } = {},
) {
  const nc: NatsConnection = await connect({ servers: inject("natsUrl") });
  const store = await EventStore.connect(nc);
  const streams = {
    apps: prefixedStream(appsStream, prefix),
    builds: prefixedStream(buildsStream, prefix),
    releases: prefixedStream(releasesStream, prefix),
  };
  for (const s of Object.values(streams)) await ensureStream(store.jsm, s);
  const apps = await AggregateView.start(store, streams.apps, appDecider);
  await apps.caughtUp;
  const appExists = (name: string) => apps.get(name)?.status === "created";
  const builds = await BuildCatalog.start(store, streams.builds);
  const releases = await ReleaseCatalog.start(store, streams.releases);
  const contexts = await BuildContexts.open(nc, { bucket: `${prefix}-build-contexts` });
  const edgeBundles = await EdgeBundles.open(nc, { bucket: `${prefix}-edge-bundles` });
  const orgs = opts.orgs;
  const auth = orgs
    ? {
        ...AUTH,
        directory: {
          ...AUTH.directory,
          orgOf: (app: string) => orgs[app] ?? "personal",
          exists: (org: string) => org === "personal" || Object.values(orgs).includes(org),
        },
      }
    : AUTH;
  const api = createApi({
    backend: noMachines,
    auth,
    logger: createLogger("builds-test", { level: "silent" }),
    builds: new StreamBuildsBackend({
      store,
      catalog: builds,
      contexts,
      appExists,
      maxContextBytes: opts.maxContextBytes ?? 512 * 2 ** 20,
      stream: streams.builds,
    }),
    releases: new StreamReleasesBackend({
      store,
      catalog: releases,
      builds,
      appExists,
      stream: streams.releases,
      edgeBundles,
    }),
    edgeBundles: { store: edgeBundles, appExists },
  });
  const appsHandler = new CommandHandler<AppState, AppCommand, AppEvent>(store, streams.apps, appDecider);
  // The builder's side of a build, as the builder service records it.
  const buildsHandler = new CommandHandler<BuildState, BuildCommand, BuildEvent>(
    store,
    streams.builds,
    buildDecider,
  );

  return {
    api,
    token: TOKEN,
    /** The root key the tokens are minted with (tests mint org-scoped ones). */
    key: KEY,
    nc,
    store,
    streams,
    builds,
    contexts,
    edgeBundles,
    /** A request to the API with the bearer token. */
    request(path: string, init: RequestInit = {}): Promise<Response> {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${TOKEN}`);
      return Promise.resolve(api.request(path, { ...init, headers }));
    },
    /** Creates an app and waits until the gateway sees it. */
    async createApp(name: string): Promise<void> {
      const res = await appsHandler.handle(
        name,
        { type: "CreateApp", name, orgSlug: "personal" },
        { commandId: `create-${name}-${randomBytes(4).toString("hex")}` },
      );
      await apps.waitForSeq(res.seq);
    },
    /** Runs a builder's command on a build and waits until the gateway's catalog has it. */
    async builder(app: string, buildId: string, command: BuildCommand): Promise<void> {
      const res = await buildsHandler.handle(`${app}.${buildId}`, command, {
        commandId: `${command.type}-${randomBytes(6).toString("hex")}`,
      });
      await builds.waitForSeq(res.seq);
    },
    async stop(): Promise<void> {
      await Promise.all([apps.stop(), builds.stop(), releases.stop()]);
      await contexts.os.destroy();
      await edgeBundles.os.destroy();
      store.close();
      await nc.drain();
    },
  };
}

export type BuildsGateway = Awaited<ReturnType<typeof startBuildsGateway>>;
