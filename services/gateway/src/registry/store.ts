import type { BlobStore, ImageRegistry } from "@hangar/oci";

/** What the /v2 API needs of Hangar's registry: ImageRegistry fits, and so does a test double. */
export type RegistryStore = Pick<
  ImageRegistry,
  "putManifest" | "getManifest" | "tags" | "hasBlob" | "linkBlob"
> & {
  readonly blobs: Pick<BlobStore, "has" | "size" | "getStream" | "putStream" | "putFile">;
};
