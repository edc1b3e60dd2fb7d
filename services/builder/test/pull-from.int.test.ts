// FROM an image of an upstream registry: the builder's org-bound resolver (openBuildDeps'
// resolveImageFor) pulls it through Hangar's registry with the org's credentials, from Debian's
// docker-registry with Basic auth behind a multi-platform index, and builds on the amd64 variant;
// an org without credentials gets the registry's refusal naming the ref.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyLayer, cacheRepository, type RegistryCredentials } from "@hangar/oci";
import { startTestRegistry, type TestRegistry, writeTestImageLayout } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { type BuildDeps, buildImage } from "../src/image-build.js";
import { openBuildDeps } from "../src/platform.js";

const prefix = `bpull${Date.now().toString(36)}`;
let nc: NatsConnection;
let registry: TestRegistry;
let dir: string;
let deps: BuildDeps;
let resolveImageFor: (org: string) => BuildDeps["resolveImage"];

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  dir = await mkdtemp(join(tmpdir(), "hangar-builder-pull-"));
  writeTestImageLayout(join(dir, "layout"), "1", [
    { architecture: "amd64", files: { "/marker": "amd64\n" } },
    { architecture: "arm64", files: { "/marker": "arm64\n" } },
  ]);
  registry = await startTestRegistry({ auth: "basic" });
  await registry.push(`oci:${join(dir, "layout")}:1`, "base/img:1", { all: true });
  const credentials = async (org: string): Promise<RegistryCredentials | undefined> =>
    org === "acme" ? { username: registry.username, password: registry.password } : undefined;
  ({ deps, resolveImageFor } = await openBuildDeps(
    nc,
    join(dir, "data"),
    { blobs: `${prefix}-blobs`, registry: `${prefix}-registry`, cache: `${prefix}-cache` },
    1,
    { upstreams: { [registry.host]: registry.url }, credentials },
  ));
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  await nc?.drain();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("builds FROM an upstream's image pulled with the org's credentials, and refuses an org without", async () => {
  await writeFile(join(dir, "Dockerfile"), `FROM ${registry.host}/base/img:1\nCOPY Dockerfile /copied\n`);
  const input = {
    contextDir: dir,
    dockerfile: "Dockerfile",
    workDir: join(dir, "work"),
    repository: "pulled",
    tag: "v1",
    network: "none" as const,
  };
  await expect(buildImage({ ...deps, resolveImage: resolveImageFor("other") }, input, {})).rejects.toThrow(
    `authentication failed for ${registry.host}/base/img:1`,
  );
  await buildImage({ ...deps, resolveImage: resolveImageFor("acme") }, input, {});
  const image = await deps.registry.resolve("pulled:v1");
  const root = join(dir, "rootfs");
  for (const layer of image.manifest.layers)
    await applyLayer(await deps.blobs.getStream(layer.digest), root, { mode: "flatten" });
  expect((await readFile(join(root, "marker"))).toString()).toBe("amd64\n");
  expect(await deps.registry.tags(cacheRepository(registry.host, "base/img"))).toEqual(["1"]);
});
