// Issue 16's acceptance 3: the primary cut off from the other members and from the manager by
// dropping its traffic inside its own network namespace (the machine's, /run/netns/<name>), while
// the test still reaches every member's postgres on its host-local IPv4 address port 5433.
import { spawnSync } from "node:child_process";
import { netnsName } from "../../services/host-agent/src/driver/netns.js";

const TABLE = "hangar_test_partition";

/**
 * nftables rules for the machine's namespace: nothing over 6PN (the other members, their agents and
 * routers, replication) in or out, and nothing to the agent's control port (the manager reaches it on
 * the IPv4 address); loopback passes (the agent and router reach their own postgres), and so does
 * IPv4 to port 5433 (the test's writers).
 */
export function partitionRules(): string {
  return `table inet ${TABLE} {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname "lo" accept
    ip6 saddr fdaa::/16 drop
    tcp dport 5500 drop
  }
  chain output {
    type filter hook output priority -10; policy accept;
    oifname "lo" accept
    ip6 daddr fdaa::/16 drop
  }
}
`;
}

function nft(machineId: string, args: string[], input?: string): void {
  const res = spawnSync("ip", ["netns", "exec", netnsName(machineId), "nft", ...args], {
    input,
    encoding: "utf8",
  });
  if (res.status !== 0)
    throw new Error(`nft ${args.join(" ")} in machine ${machineId}'s namespace failed: ${res.stderr}`);
}

/** Cuts machine `machineId` off from its org's network and from the manager. */
export function partition(machineId: string): void {
  nft(machineId, ["-f", "-"], partitionRules());
}

/** Lifts the partition (nothing when there is none). */
export function heal(machineId: string): void {
  const res = spawnSync(
    "ip",
    ["netns", "exec", netnsName(machineId), "nft", "list", "table", "inet", TABLE],
    {
      encoding: "utf8",
    },
  );
  if (res.status === 0) nft(machineId, ["delete", "table", "inet", TABLE]);
}
