import type { PgCluster } from "@hangar/domain";
import { CommandError } from "@hangar/service";
import type { NatsConnection } from "@nats-io/transport-node";
import { BackupStore } from "./backup-store.js";
import { restoreToMember } from "./backup-transfer.js";
import type { ClusterOps } from "./cluster-ops.js";
import type { MemberStatus } from "./member-client.js";

const stores = new WeakMap<NatsConnection, Promise<BackupStore>>();

/** The PG_BACKUPS store on `nc`, opened once per connection. */
export function backupStoreOf(nc: NatsConnection): Promise<BackupStore> {
  let store = stores.get(nc);
  if (!store) {
    store = BackupStore.open(nc);
    stores.set(nc, store);
    store.catch(() => stores.delete(nc));
  }
  return store;
}

/**
 * The first member of a restored cluster `c` (instead of its bootstrap): the source's base backup
 * and the WAL after it uploaded, recovered to the target time and promoted by the member agent,
 * which then runs as the cluster's primary with `c`'s own credentials. A member that already
 * runs as a primary (a resumed create) is answered as it is.
 */
export async function restoreFirstMember(
  ops: ClusterOps,
  c: PgCluster,
  memberId: string,
): Promise<MemberStatus> {
  const restore = c.restore;
  if (!restore) throw new CommandError(`cluster ${c.cluster} is not a restore`, "internal");
  const now = await ops.statusOf(c.cluster, memberId);
  if (now?.role === "primary" && now.pg_up) return now;
  const source = ops.cluster(restore.from);
  const backup = source?.backups.find((b) => b.backup_id === restore.backup_id);
  if (backup?.status !== "completed" || !backup.start_lsn || !backup.timeline)
    throw new CommandError(
      `backup ${restore.backup_id} of cluster ${restore.from} is not a completed backup`,
      "failed_precondition",
    );
  const place = ops.place(c.cluster, memberId);
  if (!place?.started)
    throw new CommandError(`member ${memberId} of cluster ${c.cluster} is not started`, "unavailable");
  const at = { address: place.control, port: ops.opts.agentPort, token: await ops.agentToken(c.cluster) };
  const started = Date.now();
  const { status, bytes } = await restoreToMember(
    at,
    await backupStoreOf(ops.opts.nc),
    restore.from,
    { id: backup.backup_id, start_lsn: backup.start_lsn, timeline: backup.timeline },
    restore.target_time === "" ? undefined : restore.target_time,
  );
  const seconds = (Date.now() - started) / 1000;
  ops.opts.logger.info(
    {
      cluster: c.cluster,
      from: restore.from,
      backup: backup.backup_id,
      target: restore.target_time || "end of WAL",
      bytes,
      seconds,
    },
    "restored the first member",
  );
  return status;
}
