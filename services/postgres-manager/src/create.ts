import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { CPU_VM_SIZES, RegionSchema } from "@hangar/config";
import {
  newMachineId,
  type PgCluster,
  type PgMember,
  pgClusterNameProblem,
  pgClusterSizeProblem,
  RESERVED_APP_NAMES,
  volumeSizeProblem,
} from "@hangar/domain";
import { DomainError } from "@hangar/eventstore";
import { scopeOfApp } from "@hangar/secrets";
import {
  CommandError,
  handleThenWait,
  type PgCreateRequest,
  placeThenCreateMachine,
  sealSecrets,
  secretsDataKey,
  sendCommand,
  subjects,
  type VolumeAttachRequest,
  type VolumeCommandReply,
  type VolumeCreateRequest,
  type VolumeReply,
} from "@hangar/service";
import { AGENT_TOKEN_SECRET, type ClusterOps, orderedMembers } from "./cluster-ops.js";
import type { MemberStatus } from "./member-client.js";
import { restoreFirstMember } from "./restore.js";

const ORG_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The volume each member keeps its data on, mounted at /data (PGDATA is /data/postgresql). */
export const MEMBER_VOLUME = "pg_data";

/** The credentials a cluster's app holds (docs/postgres.md "Cluster shape"). */
const CREDENTIALS = ["OPERATOR_PASSWORD", "REPL_PASSWORD", AGENT_TOKEN_SECRET] as const;

/** Why a create request is refused (invalid_argument), or undefined. Checks every field's type too. */
export function createRequestProblem(req: PgCreateRequest): string | undefined {
  if (typeof req.command_id !== "string" || req.command_id === "") return "a create needs a command_id";
  if (typeof req.name !== "string") return "a create needs a name";
  const nameProblem = pgClusterNameProblem(req.name);
  if (nameProblem) return nameProblem;
  if (typeof req.org !== "string" || !ORG_SLUG.test(req.org)) return `invalid org ${JSON.stringify(req.org)}`;
  if (typeof req.region !== "string" || !RegionSchema.safeParse(req.region).success)
    return `invalid region ${JSON.stringify(req.region)}`;
  if (typeof req.vm_size !== "string" || !Object.hasOwn(CPU_VM_SIZES, req.vm_size))
    return `invalid vm size ${JSON.stringify(req.vm_size)}: one of ${Object.keys(CPU_VM_SIZES).join(", ")}`;
  if (typeof req.volume_size_gb !== "number") return "volume_size_gb must be a number of GB";
  const sizeProblem = volumeSizeProblem(req.volume_size_gb);
  if (sizeProblem) return sizeProblem;
  if (typeof req.initial_size !== "number") return "initial_size must be a number of members";
  return pgClusterSizeProblem(req.initial_size);
}

/** The machine id of a create's member `index`: derived from the create, so a resumed create names it again. */
export function memberMachineId(cluster: string, createCommandId: string, index: number): string {
  return newMachineId(`${cluster}/${createCommandId}/member/${index}`);
}

/** The config of a member's machine (docs/postgres.md "Cluster shape"). */
export function memberMachineConfig(
  c: PgCluster,
  volumeId: string,
): Record<string, unknown> & {
  guest: { cpu_kind: string; cpus: number; memory_mb: number };
} {
  const size = CPU_VM_SIZES[c.vm_size];
  return {
    image: c.image,
    guest: { cpu_kind: size?.cpu_kind ?? "shared", cpus: c.cpus, memory_mb: c.memory_mb },
    env: { PRIMARY_REGION: c.region },
    restart: { policy: "always" },
    mounts: [{ volume: volumeId, name: MEMBER_VOLUME, path: "/data" }],
    metadata: { "fly-managed-postgres": "true", "hangar-postgres-cluster": c.cluster },
  };
}

/**
 * Records a create (the first step), refusing a name an app or another cluster has. The same
 * command id asked again is the same cluster (no event).
 */
export async function recordCreate(
  ops: ClusterOps,
  req: PgCreateRequest,
  restore?: { from: string; backupId: string; targetTime: string },
): Promise<PgCluster> {
  const problem = createRequestProblem(req);
  if (problem) throw new DomainError(problem, "invalid_argument");
  const existing = ops.cluster(req.name);
  if (existing && existing.create_command_id !== req.command_id)
    throw new DomainError(`postgres cluster ${req.name} already exists`, "already_exists");
  const app = ops.apps.get(req.name);
  if (!existing && ((app && app.status !== "absent") || RESERVED_APP_NAMES.has(req.name)))
    throw new DomainError(`the name ${req.name} is taken by an app: pick another`, "already_exists");
  const size = CPU_VM_SIZES[req.vm_size] as (typeof CPU_VM_SIZES)[string];
  return ops.record(
    req.name,
    {
      type: "CreatePgCluster",
      cluster: req.name,
      org: req.org,
      region: req.region,
      vmSize: req.vm_size,
      cpus: size.cpus,
      memoryMb: size.memory_mb,
      volumeSizeGb: req.volume_size_gb,
      initialSize: req.initial_size,
      image: ops.opts.image,
      requestedAtMs: Date.now(),
      commandId: req.command_id,
      ...(restore ? { restore } : {}),
    },
    `create-${req.command_id}`,
  );
}

/** Whether an error is worth trying the step again for (a member still starting, a service restarting). */
function passing(err: unknown): boolean {
  return err instanceof CommandError ? err.retryable : (err as { retryable?: unknown })?.retryable === true;
}

/**
 * Drives a recorded create to its end from wherever it stands: every step is ensure-style (ids from
 * the create's command id, nothing done twice), so a manager that restarted calls it again. A step
 * that fails for a passing reason is tried again until the create's deadline; then, or on a refusal,
 * the create is recorded failed with why.
 */
export async function driveCreate(ops: ClusterOps, name: string, signal: AbortSignal): Promise<void> {
  const c0 = ops.cluster(name);
  if (c0?.status !== "creating") return;
  const deadline = Date.parse(c0.created_at) + ops.opts.timings.createTimeoutMs;
  const log = ops.opts.logger.child({ cluster: name });
  for (;;) {
    if (signal.aborted) return;
    try {
      await createSteps(ops, name, deadline, signal);
      return;
    } catch (err) {
      if (signal.aborted) return;
      const late = Date.now() >= deadline;
      if (passing(err) && !late) {
        log.warn({ err: String(err) }, "create step failed for now; trying again");
        await sleep(1_000);
        continue;
      }
      const reason = late
        ? `not ready within ${ops.opts.timings.createTimeoutMs / 1000} s: ${String(err)}`
        : String(err);
      log.error({ reason }, "create failed");
      await ops.record(name, { type: "FailCreate", reason }, `create-failed-${c0.create_command_id}`);
      return;
    }
  }
}

async function createSteps(
  ops: ClusterOps,
  name: string,
  deadline: number,
  signal: AbortSignal,
): Promise<void> {
  let c = current(ops, name);
  const log = ops.opts.logger.child({ cluster: name });
  await ensureApp(ops, c);
  await ensureCredentials(ops, c);
  for (let index = 0; index < c.initial_size; index++) {
    c = await ensureMember(ops, current(ops, name), index);
  }
  const members = orderedMembers(c);
  const [first] = members;
  if (!first) throw new CommandError(`cluster ${name} has no member`, "internal");
  if (!first.ready) {
    await untilAnswers(ops, name, first.id, deadline, signal);
    const self = ops.addresses(c, [first.id]);
    await ops.onMember(name, first.id, (m, at, token) => m.configure(at, token, self));
    // A restore (backups.ts) recovers the first member from the source's archive instead.
    const status = c.restore
      ? await restoreFirstMember(ops, c, first.id)
      : await ops.onMember(name, first.id, (m, at, token) => m.bootstrap(at, token, self));
    c = await ops.record(
      name,
      { type: "MarkMemberReady", memberId: first.id, role: "primary", timeline: status.timeline ?? 1 },
      `ready-${first.id}`,
    );
    log.info({ member: first.id }, "primary bootstrapped");
  }
  for (const replica of members.slice(1)) {
    if (current(ops, name).members[replica.id]?.ready) continue;
    await untilAnswers(ops, name, replica.id, deadline, signal);
    const pair = ops.addresses(c, [first.id, replica.id]);
    const primary = pair.find((a) => a.id === first.id);
    if (!primary) throw new CommandError(`primary ${first.id} has no address`, "unavailable");
    await ops.onMember(name, replica.id, (m, at, token) => m.configure(at, token, pair));
    const status = await ops.onMember(name, replica.id, (m, at, token) => m.replicate(at, token, primary));
    c = await ops.record(
      name,
      { type: "MarkMemberReady", memberId: replica.id, role: "replica", timeline: status.timeline ?? 1 },
      `ready-${replica.id}`,
    );
    log.info({ member: replica.id }, "replica streaming");
  }
  // Every member learns the whole cluster: the primary sets its synchronous standbys (ANY 1) from it.
  const all = ops.addresses(c);
  if (all.length !== members.length) throw new CommandError("a member has no address yet", "unavailable");
  for (const m of members)
    await ops.onMember(name, m.id, (client, at, token) => client.configure(at, token, all));
  await ops.record(
    name,
    { type: "MarkClusterReady", primaryId: first.id },
    `cluster-ready-${c.create_command_id}`,
  );
  log.info({ primary: first.id, members: members.length }, "cluster ready");
}

function current(ops: ClusterOps, name: string): PgCluster {
  const c = ops.cluster(name);
  if (!c) throw new CommandError(`cluster ${name} is not recorded`, "internal");
  if (c.status !== "creating" && c.status !== "ready")
    throw new DomainError(`cluster ${name} is ${c.status}`, "failed_precondition");
  return c;
}

/** The cluster's app in its org, created as the gateway creates apps. */
async function ensureApp(ops: ClusterOps, c: PgCluster): Promise<void> {
  const app = ops.apps.get(c.cluster);
  if (app && app.status === "created") {
    if (app.orgSlug !== c.org)
      throw new DomainError(`app ${c.cluster} belongs to another org`, "already_exists");
    return;
  }
  await handleThenWait(
    ops.appsHandler,
    ops.apps,
    c.cluster,
    { type: "CreateApp", name: c.cluster, orgSlug: c.org },
    { commandId: `pg-app-${c.create_command_id}` },
  );
}

/**
 * The cluster app's credentials, generated once and sealed as app secrets (deployed, so its machines
 * get them): kept when they exist, so a resumed create never changes a password a member has.
 */
async function ensureCredentials(ops: ClusterOps, c: PgCluster): Promise<void> {
  const missing = CREDENTIALS.filter((name) => !ops.appSecrets(c.cluster)?.deployed[name]);
  if (missing.length === 0) return;
  const aggregateId = `app.${c.cluster}`;
  const crypto = scopeOfApp(c.cluster);
  const record = async (command: Parameters<typeof ops.secretsHandler.handle>[1], id: string) => {
    await handleThenWait(ops.secretsHandler, ops.secrets, aggregateId, command, { commandId: id });
  };
  const dataKey = await secretsDataKey(ops.opts.keys, {
    crypto,
    state: () => ops.appSecrets(c.cluster),
    record: (command) => record(command, `pg-secrets-key-${c.create_command_id}`),
  });
  const values = missing.map((name) => [name, randomBytes(24).toString("base64url")] as const);
  await record(
    {
      type: "UpdateSecrets",
      set: sealSecrets(dataKey, crypto, values),
      unset: [],
      staged: false,
      atMs: Date.now(),
    },
    `pg-secrets-${c.create_command_id}`,
  );
}

/**
 * Member `index`: its volume (spread over hosts when it can be), its PgMemberAdded (before the
 * machine exists), the volume attached to its machine id, and its machine placed on the volume's host.
 */
async function ensureMember(ops: ClusterOps, c: PgCluster, index: number): Promise<PgCluster> {
  const memberId = memberMachineId(c.cluster, c.create_command_id, index);
  let member: PgMember | undefined = c.members[memberId];
  if (!member) {
    const volume = await createVolume(ops, c, index);
    const next = await ops.record(
      c.cluster,
      { type: "AddMember", memberId, volumeId: volume.id, hostId: volume.host_id },
      `member-${memberId}`,
    );
    member = next.members[memberId];
    c = next;
  }
  if (!member) throw new CommandError(`member ${memberId} was not recorded`, "internal");
  if (ops.machines.machine(c.cluster, memberId)) return c;
  await sendCommand<VolumeAttachRequest, VolumeCommandReply<VolumeReply>>(
    ops.opts.nc,
    subjects.volume.attach,
    {
      app: c.cluster,
      volume_id: member.volume_id,
      machine_id: memberId,
    },
  );
  await placeThenCreateMachine(
    { nc: ops.opts.nc, machines: ops.machinesHandler, view: ops.machines },
    {
      app: c.cluster,
      machineId: memberId,
      region: c.region,
      config: memberMachineConfig(c, member.volume_id),
      hostId: member.host_id,
    },
  );
  return c;
}

/**
 * The member's volume: on a host holding none of the cluster's other volumes when there is one (so
 * a host's loss takes one member), else beside them. Its id derives from the command id, so asking
 * again answers the same volume.
 */
async function createVolume(ops: ClusterOps, c: PgCluster, index: number): Promise<VolumeReply> {
  const request: VolumeCreateRequest = {
    command_id: `${c.create_command_id}-member-${index}`,
    app: c.cluster,
    org: c.org,
    name: MEMBER_VOLUME,
    region: c.region,
    size_gb: c.volume_size_gb,
    require_unique_zone: true,
  };
  const ask = (r: VolumeCreateRequest) =>
    sendCommand<VolumeCreateRequest, VolumeCommandReply<VolumeReply>>(
      ops.opts.nc,
      subjects.volume.create,
      r,
      120_000,
    );
  try {
    return await ask(request);
  } catch (err) {
    if (!(err instanceof CommandError && err.code === "insufficient_capacity")) throw err;
    return ask({ ...request, require_unique_zone: false });
  }
}

/** Waits until the member's machine has started and its agent answers (the image pull and boot). */
async function untilAnswers(
  ops: ClusterOps,
  cluster: string,
  memberId: string,
  deadline: number,
  signal: AbortSignal,
): Promise<MemberStatus> {
  for (;;) {
    const status = await ops.statusOf(cluster, memberId);
    if (status && status.state !== "starting") return status;
    if (signal.aborted) throw new CommandError("the manager is stopping", "unavailable");
    if (Date.now() >= deadline)
      throw new CommandError(`member ${memberId} did not answer before the create's deadline`, "timeout");
    await sleep(250);
  }
}
