// The [[statics]] extractor against a real nats-server: an image of two layers (the second whites a
// file out) pushed to a registry bucket; a machine config naming /app/public as statics gets its
// regular files into the statics bucket, by content, with the manifest last; the symlink in the
// folder and the file outside it are not there, and the same image and statics are read only once.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { type StaticsManifest, staticsFileName, staticsManifestName, staticsSetId } from "@hangar/config";
import {
  BlobStore,
  createLayer,
  hostArchitecture,
  ImageRegistry,
  openObjectBucket,
  writeImage,
} from "@hangar/oci";
import type { MachineChange } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import type { ObjectStore } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import tar from "tar-stream";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { orgImageResolver } from "../src/app-images.js";
import { StaticsExtractor } from "../src/statics-extractor.js";

const prefix = `bstatics${Date.now().toString(36)}`;
const STATICS = [{ guest_path: "/app/public", url_prefix: "/static", index_document: "index.html" }];
let nc: NatsConnection;
let dir: string;
let registry: ImageRegistry;
let bucket: ObjectStore;
let image: string;

/** A layer with one whiteout entry, as an upper layer deleting a file would hold it. */
async function whiteoutLayer(name: string): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name }, "");
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  dir = await mkdtemp(join(tmpdir(), "hangar-statics-extract-"));
  const root = join(dir, "root");
  await mkdir(join(root, "app", "public", "css"), { recursive: true });
  await writeFile(join(root, "app", "secret.txt"), "not static\n");
  await writeFile(join(root, "app", "public", "index.html"), "<h1>hi</h1>\n");
  await writeFile(join(root, "app", "public", "css", "site.css"), "body{}\n");
  await writeFile(join(root, "app", "public", "old.txt"), "gone in the next layer\n");
  await symlink("/app/secret.txt", join(root, "app", "public", "secret.txt"));
  const blobs = await BlobStore.open(nc, { bucket: `${prefix}-blobs` });
  registry = await ImageRegistry.open(nc, blobs, { bucket: `${prefix}-registry` });
  const lower = await createLayer(root, join(dir, "lower.tar.gz"));
  await blobs.putFile(lower.file, lower.digest);
  const upper = await blobs.putBytes(await whiteoutLayer("app/public/.wh.old.txt"));
  const digest = await writeImage(registry, {
    repository: "web",
    tag: "v1",
    layers: [lower, upper],
    config: {
      architecture: hostArchitecture(),
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: [lower.diffId, upper.digest] },
    },
  });
  image = `web@${digest}`;
  bucket = await openObjectBucket(nc, `${prefix}-statics`);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function change(app: string, config: unknown): MachineChange {
  return {
    aggregateId: `${app}.m1`,
    state: { status: "created", app, machineId: "m1", configJson: JSON.stringify(config) },
    events: [],
  } as unknown as MachineChange;
}

it("stores the regular files under guest_path by content, then the manifest", async () => {
  let resolved = 0;
  const extractor = new StaticsExtractor({
    bucket,
    blobs: registry.blobs,
    resolve: async (_app, ref) => {
      resolved++;
      return registry.resolve(ref);
    },
    logger: createLogger("statics-test"),
  });
  extractor.onMachineChange(change("web", { image, statics: STATICS }));
  extractor.onMachineChange(change("web", { image, statics: STATICS }));
  await extractor.idle();
  expect(resolved).toBe(1);

  const setId = staticsSetId(image, STATICS);
  const bytes = await bucket.getBlob(staticsManifestName("web", setId));
  if (bytes === null) throw new Error("no manifest");
  const manifest = JSON.parse(Buffer.from(bytes).toString()) as StaticsManifest;
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");
  expect(manifest.files).toEqual([
    {
      "index.html": { sha256: sha("<h1>hi</h1>\n"), size: 12 },
      "css/site.css": { sha256: sha("body{}\n"), size: 7 },
    },
  ]);
  expect(manifest.warnings).toEqual([
    "/app/public/secret.txt is a symlink (to /app/secret.txt): symlinks are not followed, not served",
  ]);
  const css = await bucket.getBlob(staticsFileName("web", setId, sha("body{}\n")));
  expect(Buffer.from(css ?? []).toString()).toBe("body{}\n");

  // A second extractor (another builder, or this one restarted) finds the set done.
  let again = 0;
  const second = new StaticsExtractor({
    bucket,
    blobs: registry.blobs,
    resolve: async (_app, ref) => {
      again++;
      return registry.resolve(ref);
    },
    logger: createLogger("statics-test"),
  });
  second.onMachineChange(change("web", { image, statics: STATICS }));
  await second.idle();
  expect(again).toBe(0);
});

it("leaves a config without statics, or with only a tigris_bucket one, alone", async () => {
  let resolved = 0;
  const extractor = new StaticsExtractor({
    bucket,
    blobs: registry.blobs,
    resolve: async (_app, ref) => {
      resolved++;
      return registry.resolve(ref);
    },
    logger: createLogger("statics-test"),
  });
  extractor.onMachineChange(change("web", { image }));
  extractor.onMachineChange(
    change("web", { image, statics: [{ guest_path: "/app/public", url_prefix: "/s", tigris_bucket: "b" }] }),
  );
  await extractor.idle();
  expect(resolved).toBe(0);
});

it("never reads another org's app image for an app's statics", async () => {
  // "web" is acme's app; "thief" is another org's, whose machine config names web's image.
  const orgOf = (app: string) => ({ web: "acme", thief: "evil" })[app];
  const extractor = new StaticsExtractor({
    bucket,
    blobs: registry.blobs,
    resolve: (app, ref) =>
      orgImageResolver({
        org: orgOf(app) ?? "",
        orgOf,
        registry,
        upstreams: {},
        resolve: (r: string) => registry.resolve(r),
      })(ref),
    logger: createLogger("statics-test"),
  });
  extractor.onMachineChange(change("thief", { image, statics: STATICS }));
  await extractor.idle();
  expect(await bucket.info(staticsManifestName("thief", staticsSetId(image, STATICS)))).toBeNull();
  // The same resolver lets web's own machines have them.
  extractor.onMachineChange(change("web", { image, statics: [{ guest_path: "/app", url_prefix: "/" }] }));
  await extractor.idle();
  const own = await bucket.info(
    staticsManifestName("web", staticsSetId(image, [{ guest_path: "/app", url_prefix: "/" }])),
  );
  expect(own).not.toBeNull();
});
