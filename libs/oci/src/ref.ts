import { type Digest, isDigest } from "./digest.js";
import { InvalidReferenceError } from "./errors.js";

/**
 * The host name Hangar writes into the refs of images it builds. A ref of this host (or of any host
 * that is not a configured upstream, see image-source.ts) is looked up in Hangar's registry by
 * repository and tag or digest.
 */
export const DEFAULT_REGISTRY_HOST: string = process.env.HANGAR_REGISTRY_HOST || "registry.hangar.internal";

/** A parsed image reference. */
export interface ImageRef {
  registry?: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/** True for a repository name as the Distribution spec allows it (lowercase components split by "/"). */
export function isRepositoryName(name: string): boolean {
  return name.length <= 255 && name.split("/").every((c) => COMPONENT.test(c));
}

/** True for a valid tag. */
export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

/**
 * Parses an image reference the way Docker does: `node:20` is repository `library/node` tag `20`;
 * a first component with a dot or a port, or `localhost`, is a registry host.
 */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d))
      throw new InvalidReferenceError(
        `image ref ${ref} has an invalid digest; expected sha256:<64 hex digits>`,
      );
    digest = d;
    rest = rest.slice(0, at);
  }
  let registry: string | undefined;
  const slash = rest.indexOf("/");
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw new InvalidReferenceError(`image ref ${ref} has an invalid tag "${tag}"`);
  }
  if (!isRepositoryName(rest)) {
    throw new InvalidReferenceError(
      `image ref ${ref} has an invalid repository name "${rest}" (lowercase letters, digits, ._- and /)`,
    );
  }
  // Docker Hub's official images live under library/; so do Hangar's base images.
  const repository =
    (registry === undefined || registry === "docker.io") && !rest.includes("/") ? `library/${rest}` : rest;
  return {
    ...(registry !== undefined && { registry }),
    repository,
    ...(tag !== undefined && { tag }),
    ...(digest !== undefined && { digest }),
  };
}

/** Writes a reference back as a string; without a registry, `library/x` is written `x`. */
export function formatImageRef(r: ImageRef): string {
  const repository = r.registry === undefined ? r.repository.replace(/^library\/(?!.*\/)/, "") : r.repository;
  return `${r.registry === undefined ? "" : `${r.registry}/`}${repository}${r.tag === undefined ? "" : `:${r.tag}`}${
    r.digest === undefined ? "" : `@${r.digest}`
  }`;
}
