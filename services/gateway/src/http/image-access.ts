import { dirImagePath } from "@hangar/config";
import { parseImageRef } from "@hangar/oci";
import type { RegistryStore } from "../registry/mod.js";
import type { OrgDirectory } from "./authz.js";
import { ApiError } from "./errors.js";

/** The org of the app a registry repository belongs to (its first path segment), if any. */
function ownerOrg(orgs: OrgDirectory, repository: string): string | undefined {
  return orgs.orgOf(repository.split("/")[0] ?? "");
}

/**
 * Refuses (404 `image <ref> not found`) an image a machine or release of an app in `org` may not
 * run: one whose repository belongs to another org's app. Hosts pull every ref from Hangar's own
 * registry whatever host it names (ImageRegistry.resolve), so the host is ignored here too, and a
 * ref without a host tries `library/x` and then `x` just as resolve does: `x` owned by another org
 * (a tenant squatting an official name such as `redis`) is refused unless the operator's
 * `library/x` answers first. The refusal names only the ref, as for an image that does not exist:
 * it depends on who holds the app name (which app creation already tells anyone), never on whether
 * the other org pushed the tag. Repositories of no app (operator-pushed bases) stay open to all.
 */
export async function admitImage(
  orgs: OrgDirectory,
  registry: RegistryStore | undefined,
  org: string,
  image: string | undefined,
): Promise<void> {
  if (image === undefined || dirImagePath(image) !== undefined) return;
  let parsed: ReturnType<typeof parseImageRef>;
  try {
    parsed = parseImageRef(image);
  } catch {
    // Not a valid ref: no repository can be reached through it; the host reports it as before.
    return;
  }
  const foreign = (repository: string): boolean => {
    const owner = ownerOrg(orgs, repository);
    return owner !== undefined && owner !== org;
  };
  const notFound = (): ApiError => ApiError.of("not_found", `image ${image} not found`);
  if (foreign(parsed.repository)) throw notFound();
  if (parsed.registry !== undefined || !parsed.repository.startsWith("library/")) return;
  const fallback = parsed.repository.slice("library/".length);
  if (!foreign(fallback)) return;
  const reference = parsed.digest ?? parsed.tag ?? "latest";
  const official = registry && (await registry.getManifest(parsed.repository, reference));
  if (!official) throw notFound();
}
