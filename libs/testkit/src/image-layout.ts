import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";

/** One platform's image of a test layout: its files (path -> content, executable) in one layer. */
export interface TestPlatformImage {
  architecture: string;
  files: Record<string, string | Uint8Array>;
  /** Further layers on top of the first, one record of files each. */
  moreLayers?: Array<Record<string, string | Uint8Array>>;
  cmd?: string[];
}

/**
 * Writes an OCI image layout at `dir` whose `tag` is an index of one image per platform (a
 * multi-platform image, as `skopeo copy --all` pushes it). Layers are tars of the given files,
 * compressed with gzip or (Debian's zstd) zstd, with their OCI media types.
 */
export function writeTestImageLayout(
  dir: string,
  tag: string,
  images: TestPlatformImage[],
  compression: "gzip" | "zstd" = "gzip",
): void {
  mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  const put = (bytes: Buffer): { digest: string; size: number } => {
    const hex = createHash("sha256").update(bytes).digest("hex");
    writeFileSync(join(dir, "blobs/sha256", hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const layerOf = (
    files: Record<string, string | Uint8Array>,
  ): { layer: { digest: string; size: number }; diffId: string } => {
    const root = mkdtempSync(join(tmpdir(), "hangar-test-layer-"));
    try {
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), content, { mode: 0o755 });
      }
      const tar = execFileSync(
        "tar",
        ["--sort=name", "--owner=0", "--group=0", "--mtime=@0", "-C", root, "-cf", "-", "."],
        {
          maxBuffer: 1 << 30,
        },
      );
      const compressed =
        compression === "gzip"
          ? gzipSync(tar, { level: 1 })
          : execFileSync("zstd", ["-q", "-c"], { input: tar, maxBuffer: 1 << 30 });
      return { layer: put(compressed), diffId: `sha256:${createHash("sha256").update(tar).digest("hex")}` };
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
  const manifests = images.map((image) => {
    const layers = [image.files, ...(image.moreLayers ?? [])].map(layerOf);
    const config = put(
      Buffer.from(
        JSON.stringify({
          architecture: image.architecture,
          os: "linux",
          config: { Cmd: image.cmd ?? ["/bin/sh"], Env: ["PATH=/usr/local/bin:/usr/bin:/bin"] },
          rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
        }),
      ),
    );
    const manifest = put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
          layers: layers.map((l) => ({
            mediaType: `application/vnd.oci.image.layer.v1.tar+${compression}`,
            ...l.layer,
          })),
        }),
      ),
    );
    return {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      ...manifest,
      platform: { architecture: image.architecture, os: "linux" },
    };
  });
  const index = put(
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }),
    ),
  );
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.index.v1+json",
          ...index,
          annotations: { "org.opencontainers.image.ref.name": tag },
        },
      ],
    }),
  );
}
