import { BuildError, type BuildFailureDetails } from "../domain/errors.js";

/** The network of RUN steps the platform allows (HANGAR_BUILDER_NETWORK). */
export type BuildNetworkPolicy = "default" | "none";

/**
 * The network a RUN step gets, as `docker build` grants it under an entitlement: what it asked
 * (`--network=`, undefined when not written) within the platform's policy. Under "none" every RUN
 * runs without network, and one that asks for it by name fails, naming the setting.
 */
export function stepNetwork(
  asked: "default" | "none" | undefined,
  policy: BuildNetworkPolicy,
  at: BuildFailureDetails,
): "default" | "none" {
  if (policy === "none" && asked === "default") {
    throw new BuildError(
      "network_forbidden",
      `line ${at.line}: RUN --network=default is refused: this platform runs builds without network (HANGAR_BUILDER_NETWORK=none); remove --network=default or download what the step needs into the build context`,
      at,
    );
  }
  return policy === "none" ? "none" : (asked ?? "default");
}
