import { splitShellWords } from "@hangar/config";
import { describe, expect, it } from "vitest";
import {
  clusterDetails,
  clustersTable,
  type PgCluster,
  type PgMember,
  progressLines,
  psqlCommand,
} from "./postgres.js";

function member(id: string, over: Partial<PgMember> = {}): PgMember {
  return {
    id,
    region: "local",
    host_id: "host-a",
    volume_id: `vol_${id}`,
    role: null,
    state: "starting",
    fenced: false,
    timeline: null,
    lsn: null,
    replay_lag_ms: null,
    healthy: false,
    ...over,
  };
}

function cluster(over: Partial<PgCluster> = {}): PgCluster {
  return {
    name: "db",
    org: "acme",
    region: "local",
    status: "creating",
    primary_id: null,
    timeline: null,
    members: [],
    attachments: [],
    ...over,
  };
}

describe("hangar postgres", () => {
  it("says what a create did between two looks at the cluster", () => {
    const first = cluster({ members: [member("m1")] });
    expect(progressLines(undefined, first)).toEqual([
      "Member m1 added: volume vol_m1 on host host-a",
      "Cluster db is creating",
    ]);
    const ready = cluster({
      status: "ready",
      members: [member("m1", { role: "primary" }), member("m2", { role: "replica" })],
    });
    expect(progressLines(first, ready)).toEqual([
      "Member m1 is ready as primary",
      "Member m2 added: volume vol_m2 on host host-a",
      "Member m2 is ready as replica",
      "Cluster db is ready",
    ]);
    expect(progressLines(ready, ready)).toEqual([]);
  });

  it("shows members with role, timeline, LSN and lag, and the attached apps", () => {
    const text = clusterDetails(
      cluster({
        status: "ready",
        primary_id: "m1",
        timeline: 2,
        members: [
          member("m1", { role: "primary", state: "primary", healthy: true, timeline: 2, lsn: "0/3000148" }),
          member("m2", {
            role: "replica",
            state: "replica",
            fenced: true,
            replay_lag_ms: 4,
            lsn: "0/3000100",
          }),
        ],
        attachments: [{ app: "web", database: "web", user: "web", variable: "DATABASE_URL" }],
      }),
    );
    expect(text).toMatch(/^Cluster {3}db\n/);
    expect(text).toMatch(/Hostname {2}db\.internal:5432 \(the primary\)/);
    expect(text).toMatch(/m1\s+primary\s+primary\s+healthy\s+no\s+2\s+0\/3000148\s+-\s+host-a\s+vol_m1/);
    expect(text).toMatch(/m2\s+replica\s+replica\s+unhealthy\s+yes\s+-\s+0\/3000100\s+4ms/);
    expect(text).toMatch(
      /Attached apps\nAPP\s+DATABASE\s+USER\s+VARIABLE\nweb\s+web\s+web\s+DATABASE_URL\n$/,
    );
    expect(clustersTable([cluster({ members: [member("m1")] })])).toBe(
      "NAME  ORG   REGION  STATUS    MEMBERS  PRIMARY\ndb    acme  local   creating  1        -\n",
    );
  });

  it("runs psql over the member's socket as postgres, root stepping down, as the gateway splits it", () => {
    const argv = splitShellWords(psqlCommand("orders", false));
    const psql = "psql -h /data/run -p 5433 -U postgres -d orders -v ON_ERROR_STOP=1";
    expect(argv).toEqual([
      "sh",
      "-c",
      `if [ "$(id -u)" = 0 ]; then exec runuser -u postgres -- ${psql}; fi; exec ${psql}`,
    ]);
    // On a terminal psql is interactive: an error does not end it.
    expect(psqlCommand("orders", true)).not.toContain("ON_ERROR_STOP");
  });
});
