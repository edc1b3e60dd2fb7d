import { createHash } from "node:crypto";
import type { StageBase, StepOp } from "./plan.js";

/** Bumped when what a step's layer holds for the same key changes, so older cache entries stop matching. */
export const CACHE_KEY_VERSION = "hangar-builder-cache/1";

/**
 * The cache key of a step: the hash of its parent's key (the previous step, or the base image),
 * the instruction after substitution, and the digests of what it reads (COPY's files, COPY --from's
 * source stage). Any change upstream changes every key after it.
 */
export function stepKey(parentKey: string, resolved: string, inputs: readonly string[] = []): string {
  const h = createHash("sha256");
  h.update(JSON.stringify([CACHE_KEY_VERSION, parentKey, resolved, inputs]));
  return h.digest("hex");
}

/** The key a stage's chain starts from: the base image's manifest digest, or the base stage's last key. */
export function baseKey(base: StageBase, resolved: { digest?: string; stageKey?: string }): string {
  switch (base.kind) {
    case "scratch":
      return stepKey("", "scratch");
    case "image":
      if (!resolved.digest) throw new Error(`base image ${base.ref} has no digest`);
      return stepKey("", `image ${resolved.digest}`);
    case "stage":
      if (!resolved.stageKey) throw new Error(`stage ${base.index} has not been built`);
      return resolved.stageKey;
  }
}

/** What a step reads beside its parent, as known when it is about to run. */
export interface StepInputContext {
  /** Digest of the COPY/ADD sources (paths, modes, contents) matched in the context. */
  contentDigest?: string;
  /** The last key of each built stage, by index. */
  stageKeys: ReadonlyMap<number, string>;
  /** Manifest digests of the images COPY --from names, by reference. */
  imageDigests: ReadonlyMap<string, string>;
  /** RUN steps get the host network. */
  network: boolean;
  /** What a RUN's bind mounts read: the digest of their context files, or their stage's key or image's digest. */
  mountInputs?: readonly string[];
}

/** The inputs a step's key hashes beside its parent key and instruction. */
export function stepInputs(op: StepOp, ctx: StepInputContext): string[] {
  switch (op.kind) {
    case "run":
      return [...(ctx.network ? ["network"] : []), ...(ctx.mountInputs ?? [])];
    case "copy": {
      const src = op.source;
      if (src.kind === "context") {
        if (!ctx.contentDigest) throw new Error("COPY from the context needs its content digest");
        return [`context ${ctx.contentDigest}`];
      }
      if (src.kind === "stage") {
        const key = ctx.stageKeys.get(src.index);
        if (!key) throw new Error(`stage ${src.index} has not been built`);
        return [`stage ${key}`];
      }
      const digest = ctx.imageDigests.get(src.ref);
      if (!digest) throw new Error(`image ${src.ref} has not been resolved`);
      return [`image ${digest}`];
    }
    default:
      return [];
  }
}
