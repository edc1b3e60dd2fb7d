import { isUpstreamRef, type UpstreamRegistries } from "./image-source.js";
import { parseImageRef } from "./ref.js";

/**
 * Whether `ref` reaches an image of another org's app, seen from `org`. A repository belongs to the
 * app its first path segment names (`orgOf` says which org holds an app, undefined for none); a
 * repository of no app (an operator's base such as library/node) belongs to no org. Refs are read
 * as ImageRegistry.resolve reads them: whatever host a ref names, it is looked up in Hangar's
 * registry, and a ref without a host tries `library/x` and then `x`, so `x` held by another org (a
 * tenant squatting an official name such as `redis`) counts unless `hasManifest` finds the
 * operator's `library/x` first. A ref of an upstream registry (`upstreams`) is pulled from there,
 * never an app's image, and a ref that does not parse reaches nothing.
 */
export async function reachesForeignApp(
  ref: string,
  org: string,
  orgOf: (app: string) => string | undefined,
  hasManifest: (repository: string, reference: string) => Promise<boolean>,
  upstreams: UpstreamRegistries = {},
): Promise<boolean> {
  let parsed: ReturnType<typeof parseImageRef>;
  try {
    parsed = parseImageRef(ref);
  } catch {
    return false;
  }
  if (isUpstreamRef(parsed, upstreams)) return false;
  const foreign = (repository: string): boolean => {
    const owner = orgOf(repository.split("/")[0] ?? "");
    return owner !== undefined && owner !== org;
  };
  if (foreign(parsed.repository)) return true;
  if (parsed.registry !== undefined || !parsed.repository.startsWith("library/")) return false;
  if (!foreign(parsed.repository.slice("library/".length))) return false;
  return !(await hasManifest(parsed.repository, parsed.digest ?? parsed.tag ?? "latest"));
}
