import { dirImagePath } from "@hangar/config";
import { reachesForeignApp, type UpstreamRegistries } from "@hangar/oci";
import type { RegistryStore } from "../registry/mod.js";
import type { OrgDirectory } from "./authz.js";
import { ApiError } from "./errors.js";

/**
 * Refuses (404 `image <ref> not found`) an image a machine or release of an app in `org` may not
 * run: one that reaches another org's app repository (reachesForeignApp: any host, and the
 * `library/x` -> `x` fallback onto a squatted name unless the operator's `library/x` exists).
 * The refusal names only the ref, as for an image that does not exist: it depends on who holds the
 * app name (which app creation already tells anyone), never on whether the other org pushed the
 * tag. Repositories of no app (operator-pushed bases) stay open to all, and so do refs of an
 * upstream registry (`upstreams`), which hosts pull from there and which never name an app's image.
 */
export async function admitImage(
  orgs: OrgDirectory,
  registry: RegistryStore | undefined,
  org: string,
  image: string | undefined,
  upstreams: UpstreamRegistries = {},
): Promise<void> {
  if (image === undefined || dirImagePath(image) !== undefined) return;
  const official = async (repository: string, reference: string) =>
    registry !== undefined && (await registry.getManifest(repository, reference)) !== undefined;
  if (await reachesForeignApp(image, org, (app) => orgs.orgOf(app), official, upstreams)) {
    throw ApiError.of("not_found", `image ${image} not found`);
  }
}
