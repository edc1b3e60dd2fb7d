// One round of issue 16's acceptance 2, shared by cluster.e2e.test.ts (acceptance 2) and `pnpm bench postgres`: with
// a NumberedWriter committing through the routers of the members that will survive, SIGKILL every process
// of the primary's machine, time until a write is accepted again, wait until the cluster is whole again,
// and check every acknowledged number is present. The killed machine restarts at once (restart policy
// always); its agent starts it fenced, and with a synchronous replica streaming the manager promotes
// that replica rather than unfencing the old primary, which rejoins as a replica. The round says
// whether a replica became primary (the acceptance test requires it; the bench reports it).
import {
  type ClusterStatus,
  isWhole,
  killMachine,
  type PgPlatform,
  routerTargets,
  waitForStatus,
} from "./cluster.js";
import { NumberedWriter } from "./writer.js";

/** How long a round waits for the first write the new primary accepts before it gives up. */
const ACCEPT_TIMEOUT_MS = 60_000;
/** How long a round waits for the killed member to rejoin as a replica. */
const REJOIN_TIMEOUT_MS = 120_000;

/** What one kill of the primary showed. */
export interface FailoverRound {
  oldPrimary: string;
  newPrimary: string;
  /** Whether another member became primary (else the killed one came back as the primary). */
  failedOver: boolean;
  /** The cluster, whole again, at the end of the round. */
  status: ClusterStatus;
  /** When the kill was sent (ISO time), to find the round in the services' and members' logs. */
  killedAt: string;
  timeline: number;
  /** From the SIGKILL (every process dead) until a write sent after it was acknowledged; null when none was in time. */
  acceptedAfterS: number | null;
  /** Acknowledged numbers so far (all rounds), and those of them missing on the new primary. */
  acked: number;
  missing: number[];
  rows: number;
}

/**
 * A writer on the cluster's `acks` table through the routers of every member but `avoid` (the one about
 * to be killed), in member order; its targets follow the cluster's members as the rounds go.
 */
export function clusterWriter(pp: PgPlatform, uri: string, members: () => string[], avoid: () => string) {
  return new NumberedWriter(
    () =>
      routerTargets(
        pp.p,
        members().filter((id) => id !== avoid()),
      ),
    { uri },
  );
}

/** Kills the primary of a whole cluster of `size` while `writer` writes; see the file's comment. */
export async function failoverRound(
  pp: PgPlatform,
  cluster: string,
  size: number,
  writer: NumberedWriter,
): Promise<FailoverRound> {
  // The primary now: the manager may have failed over since the caller last looked (a slow member).
  const before = await waitForStatus(pp, cluster, (s) => isWhole(s, size), REJOIN_TIMEOUT_MS);
  const oldPrimary = before.primary_id;
  // Some acknowledged writes on the old primary first: these are what a failover must not lose.
  const warm = performance.now();
  if (!(await writer.waitForAckAfter(warm, 30_000))) throw new Error("the writer got no write acknowledged");
  const killedAtIso = new Date().toISOString();
  await killMachine(pp.p, oldPrimary);
  // Timed from when every process of the machine is dead, to the answer of the first write sent after
  // that: one sent before may have been acknowledged by the old primary (cgroup v1 freezes it first).
  const killedAt = performance.now();
  const ack = await writer.waitForAckAfter(killedAt, ACCEPT_TIMEOUT_MS);
  const after = await waitForStatus(pp, cluster, (s) => isWhole(s, size), REJOIN_TIMEOUT_MS);
  const { missing, acked, rows } = await writer.missing();
  return {
    oldPrimary,
    newPrimary: after.primary_id,
    failedOver: after.primary_id !== oldPrimary,
    status: after,
    killedAt: killedAtIso,
    timeline: after.timeline,
    acceptedAfterS: ack ? (ack.at - killedAt) / 1000 : null,
    acked,
    missing,
    rows,
  };
}
