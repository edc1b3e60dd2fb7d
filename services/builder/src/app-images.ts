import {
  type ImageRegistry,
  imageNotFoundError,
  type ResolvedImage,
  reachesForeignApp,
  type UpstreamRegistries,
} from "@hangar/oci";

/**
 * Resolves images as seen from one org: an image of another org's app is not found (the same answer
 * as for one that does not exist), whatever host or name the ref gives it; others go to `resolve`.
 * A build's FROM and an app's [[statics]] read images through it.
 */
export function orgImageResolver<P extends unknown[]>(o: {
  org: string;
  orgOf: (app: string) => string | undefined;
  registry: Pick<ImageRegistry, "getManifest">;
  upstreams: UpstreamRegistries | undefined;
  resolve: (ref: string, ...rest: P) => Promise<ResolvedImage>;
}): (ref: string, ...rest: P) => Promise<ResolvedImage> {
  const official = async (repository: string, reference: string) =>
    (await o.registry.getManifest(repository, reference)) !== undefined;
  return async (ref, ...rest) => {
    if (await reachesForeignApp(ref, o.org, o.orgOf, official, o.upstreams)) {
      throw imageNotFoundError(ref, o.upstreams ?? {});
    }
    return o.resolve(ref, ...rest);
  };
}
