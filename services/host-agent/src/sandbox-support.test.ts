import { describe, expect, it } from "vitest";
import { type HostProbe, sandboxCapability } from "./sandbox-support.js";

const capable: HostProbe = { runtime: async () => ({ ok: true }), overlay: () => true, netns: () => true };

describe("sandboxCapability", () => {
  it("is ok on a host where crun runs and overlays mount", async () => {
    expect(await sandboxCapability("auto", "host", capable)).toEqual({ ok: true, network: "host" });
    expect(await sandboxCapability("sandbox", "netns", capable)).toEqual({ ok: true, network: "netns" });
  });

  it("says exactly what is missing", async () => {
    const bare: HostProbe = {
      runtime: async () => ({ ok: false, reason: "crun is not installed (apt-get install crun)" }),
      overlay: () => false,
      netns: () => false,
    };
    const host = await sandboxCapability("auto", "host", bare);
    expect(host).toEqual({
      ok: false,
      reason:
        "the sandbox driver cannot run here: crun is not installed (apt-get install crun); " +
        "overlayfs cannot be mounted by this process (run the host agent as root)",
    });
    const onlyOverlay = await sandboxCapability("auto", "host", { ...capable, overlay: async () => false });
    expect(onlyOverlay.ok ? "" : onlyOverlay.reason).not.toMatch(/bubblewrap/);
    const netns = await sandboxCapability("auto", "netns", { ...capable, netns: () => false });
    expect(netns.ok ? "" : netns.reason).toMatch(
      /install iproute2 and run as root, or set HANGAR_HOST_AGENT_SANDBOX_NETWORK=host/,
    );
  });

  it("HANGAR_HOST_AGENT_DRIVER=process runs no OCI image, and says how to change that", async () => {
    const result = await sandboxCapability("process", "host", capable);
    expect(result.ok ? "" : result.reason).toMatch(
      /HANGAR_HOST_AGENT_DRIVER=process.*set HANGAR_HOST_AGENT_DRIVER=auto or sandbox/,
    );
  });
});
