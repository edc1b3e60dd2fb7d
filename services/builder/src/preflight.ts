import { overlaySupported, prepareCrunHost } from "@hangar/oci";
import { missingNetworkTools } from "./network/build-network.js";

/** The builder cannot run on this machine; the message says what to install or how to run it. */
export class BuilderPreflightError extends Error {
  readonly code = "builder_unavailable";

  constructor(message: string) {
    super(message);
    this.name = "BuilderPreflightError";
  }
}

/**
 * Checks that RUN steps can work here, preparing the host as the host agent does: crun, catatonit
 * and the seccomp profile installed, a cgroup layout crun accepts, overlayfs mountable, and (unless
 * builds run without network) ip and nft for the builds' network namespaces.
 */
export async function checkBuilderHost(network: "default" | "none" = "default"): Promise<void> {
  const missing = network === "default" ? missingNetworkTools() : [];
  if (missing.length > 0) {
    throw new BuilderPreflightError(
      `RUN steps get a network namespace of the build's own, made with tools this host lacks: install ${missing.join(" and ")}, or set HANGAR_BUILDER_NETWORK=none`,
    );
  }
  const crun = await prepareCrunHost();
  if (!crun.ok) {
    throw new BuilderPreflightError(
      `RUN steps run in the machines' sandbox (crun), which this host cannot run: ${crun.reason}`,
    );
  }
  if (!(await overlaySupported())) {
    throw new BuilderPreflightError(
      "cannot mount overlayfs: the builder mounts each step's root filesystem as an overlay, which needs root " +
        "(CAP_SYS_ADMIN) and the overlay kernel module; run the builder as root (in Kubernetes: a privileged container)",
    );
  }
}
