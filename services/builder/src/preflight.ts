import { bwrapPath, overlaySupported } from "@hangar/oci";

/** The builder cannot run on this machine; the message says what to install or how to run it. */
export class BuilderPreflightError extends Error {
  readonly code = "builder_unavailable";

  constructor(message: string) {
    super(message);
    this.name = "BuilderPreflightError";
  }
}

/** Checks that RUN steps can work here: bubblewrap installed and overlayfs mountable. */
export async function checkBuilderHost(): Promise<void> {
  if ((await bwrapPath()) === undefined) {
    throw new BuilderPreflightError(
      "bwrap (bubblewrap) is not on PATH: RUN steps run in a bubblewrap sandbox; install it (apt-get install bubblewrap)",
    );
  }
  if (!(await overlaySupported())) {
    throw new BuilderPreflightError(
      "cannot mount overlayfs: the builder mounts each step's root filesystem as an overlay, which needs root " +
        "(CAP_SYS_ADMIN) and the overlay kernel module; run the builder as root (in Kubernetes: a privileged container)",
    );
  }
}
