import { inboxPrefixOf } from "./nats.js";

/**
 * The one table of who may do what on the control plane's NATS. nats-server's authorization block
 * (`natsAuthorization`), docs/nats-security.md and deploy/k8s's users template
 * (deploy/k8s/base/nats/auth/authorization.conf, `pnpm k8s`) are generated from it: regenerate both
 * files after a change (tests fail on a stale one).
 */

/** An aggregate stream a user works with. Every user that uses a stream may ensure it (info/create/update). */
export interface StreamGrant {
  stream: string;
  /** Replays, follows and loads aggregates: consumers, direct gets, flow control. */
  read: boolean;
  /** The event subjects it may append to (publish); none for a reader. */
  append: string[];
  /**
   * The only subjects it may read, when not the whole stream: consumers filtered to them (the
   * filter is in the create subject, which nats-server checks against the consumer's config) and
   * direct gets of their last message; no direct get by sequence, which could reach any subject.
   */
  readOnly?: string;
  /**
   * Durable consumers of the stream it pulls from and acknowledges: a projection's (read model),
   * named by the projection.
   */
  durables?: string[];
  /** Looks the stream up but never creates it: a user outside the platform's services makes no stream. */
  lookupOnly?: boolean;
  /**
   * Durable consumers of its own making, any name, that it creates, pulls, acknowledges and deletes,
   * except the durables other users' grants name (denied to it). nats-server's permissions match
   * whole subject tokens, so they cannot hold a user to a consumer name prefix.
   */
  ownDurables?: boolean;
  /**
   * Updates the stream's configuration: the gateway brings an EVENTS of an earlier Hangar (which
   * sourced the aggregate streams) to its subjects, and sets its replicas.
   */
  updates?: boolean;
}

/** A KV or Object Store bucket a user opens (creating it if needed), reads, and maybe writes. */
export interface BucketGrant {
  bucket: string;
  write: boolean;
}

/** One NATS user: what it publishes and subscribes, in the platform's words. */
export interface NatsUserSpec {
  user: string;
  /** Who connects as this user. */
  role: string;
  streams: StreamGrant[];
  kv: BucketGrant[];
  objects: BucketGrant[];
  /** Core NATS subjects it publishes: heartbeats, samples, log lines, commands it sends. */
  publish: string[];
  /** Core NATS subjects it subscribes to. */
  subscribe: string[];
  /** Command subjects it answers (request/reply): it may reply to whoever asked. */
  serves: string[];
  /**
   * Lists every stream and its consumers (names, configs, pending counts; never a message): the
   * monitor's consumer lag metrics.
   */
  listsConsumers?: boolean;
}

/** The subjects one user may publish and subscribe to, as nats-server's permissions say them. */
export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
  /** Publishing to the reply subject of a request it received (`allow_responses`). */
  allowResponses: boolean;
  /** Subjects refused although `publish` matches them: other users' durable consumers. */
  denyPublish: string[];
}

/** The user with every permission: npm start's set-up, the tests, an operator's shell. */
export const OPERATOR_USER = "operator";

/** The read-only user of in-cluster subscribers to the event feed (EVENTS). */
export const SUBSCRIBER_USER = "subscriber";

/*
 * WHOLE_SECRETS: the host agents and the builder read every scope of SECRETS (apps' and orgs'), which
 * is every subject the stream holds (its writers append only `ev.secret.<app|org>.<name>`). So they
 * read it as whole-stream readers: that reveals nothing more than `ev.secret.*.>` would, and it
 * brings the leader's message get, without which a read on a replicated SECRETS (the Kubernetes
 * deployment's) could come from a follower that has not yet applied the latest `secrets set`: a
 * machine started right after it would have run with the old values. The proxy and the postgres
 * manager, which may read only the apps' scope, stay limited to `ev.secret.app.>`.
 */
const reader = (stream: string, readOnly?: string): StreamGrant => ({
  stream,
  read: true,
  append: [],
  ...(readOnly === undefined ? {} : { readOnly }),
});
const writer = (stream: string, ...append: string[]): StreamGrant => ({ stream, read: true, append });
const ensureOnly = (stream: string): StreamGrant => ({ stream, read: false, append: [] });

/** The services' users; a host agent's is `hostAgentUser(hostId)`. */
export const SERVICE_USERS: readonly NatsUserSpec[] = [
  {
    user: "gateway",
    role: "the Machines API: owns the app, machine, build and release commands",
    streams: [
      writer("APPS", "ev.app.*"),
      writer("MACHINES", "ev.machine.*.*"),
      writer("BUILDS", "ev.build.*.*"),
      writer("RELEASES", "ev.release.*"),
      // Secrets: sealed values and digests only (ev.secret.app.<app>, ev.secret.org.<org>).
      writer("SECRETS", "ev.secret.*.*"),
      // The audit trail: one event per successful mutating call, read back by `GET /v1/audit`.
      writer("AUDIT", "ev.audit.*.*"),
      // Orgs, their tokens (ids and caveats, never the tokens) and limits; operator tokens under ev.org._operator.
      writer("ORGS", "ev.org.*"),
      reader("SCALING"),
      ensureOnly("HOSTS"),
      // The Volumes API reads volumes here; their changes go through the volume service.
      reader("VOLUMES"),
      reader("PGCLUSTERS"),
      // The event feed (docs/events.md): the gateway creates EVENTS, copies the aggregate streams
      // into it (its relay: APPS, MACHINES, RELEASES, SCALING, VOLUMES, PGCLUSTERS) and follows it
      // for the SSE routes.
      { ...writer("EVENTS", "events.ev.>"), updates: true },
    ],
    // hangar-rate-limits: the orgs' token buckets; hangar-blob-usage: the blob bytes each org pushed
    // (its registry quota). Both shared by the gateway replicas.
    kv: [
      { bucket: "hangar-registry", write: true },
      // Which repositories each shared blob is linked to: a repository serves only its own blobs.
      { bucket: "hangar-registry-links", write: true },
      { bucket: "hangar-rate-limits", write: true },
      { bucket: "hangar-blob-usage", write: true },
      // hangar-idempotency: the callers' Idempotency-Keys and the answers they replay, on any replica.
      { bucket: "hangar-idempotency", write: true },
      // hangar-leases: only the holder of events-relay copies the aggregate streams into EVENTS.
      { bucket: "hangar-leases", write: true },
    ],
    objects: [
      { bucket: "hangar-blobs", write: true },
      { bucket: "hangar-build-contexts", write: true },
      // The edge apps' bundles, uploaded through `POST /v1/apps/{app}/edge/bundles`.
      { bucket: "hangar-edge-bundles", write: true },
    ],
    // exec and ps: `POST .../exec` and `GET .../ps` of the Machines API, answered by the machine's host;
    // tunnel: `hangar proxy` and `hangar ssh console`, through the machine's host.
    // cmd.volume.*: the Volumes API and machine mounts (attach, detach); volume.stat: a volume's
    // blocks figures, asked of its host.
    // cmd.postgres.*: the Postgres API (/v1/postgres), after authorizing the caller against the cluster's org.
    // cmd.webhooks.*: the webhooks API (/v1/webhooks), after authorizing the caller against the org.
    publish: [
      "cmd.placement.place",
      "cmd.volume.*",
      "cmd.postgres.*",
      "cmd.webhooks.*",
      "cmd.host.*.volume.stat",
      "cmd.host.*.signal",
      "cmd.host.*.logs",
      "cmd.host.*.exec",
      "cmd.host.*.ps",
      "cmd.host.*.tunnel",
    ],
    // `hangar logs`: live lines after the recent ones the hosts answer.
    subscribe: ["logs.*.*.*"],
    serves: ["cmd.machines.wake"],
  },
  {
    user: "placement",
    role: "host inventory and machine placement",
    // VOLUMES: a destroyed volume's disk room is released. APPS: a host dedication group takes only
    // its own organization's machines.
    streams: [writer("HOSTS", "ev.host.*"), reader("MACHINES"), reader("VOLUMES"), reader("APPS")],
    kv: [],
    objects: [],
    publish: [],
    subscribe: ["hosts.heartbeat.*"],
    serves: ["cmd.placement.place", "cmd.placement.place_volume"],
  },
  {
    user: "volume",
    role: "volumes: create, attach, extend, snapshot, destroy (docs/volumes.md)",
    // MACHINES: a destroyed machine's volume is detached.
    streams: [writer("VOLUMES", "ev.volume.*.*"), reader("MACHINES")],
    kv: [],
    // Opens (creates) the snapshots bucket at start, and deletes snapshots past their retention.
    objects: [{ bucket: "VOLUME_SNAPSHOTS", write: true }],
    // The disks themselves are made by the volume's host agent.
    publish: ["cmd.placement.place_volume", "cmd.host.*.volume.*"],
    subscribe: [],
    // cmd.volume.auto_extend.<host>: each host agent's auto-extends, checked against the volume's host.
    serves: ["cmd.volume.*", "cmd.volume.auto_extend.*"],
  },
  {
    user: "postgres-manager",
    role: "Postgres clusters: create, attach, failover, destroy (docs/postgres.md)",
    streams: [
      // Its read model in Postgres is projected from PGCLUSTERS on a durable consumer.
      { ...writer("PGCLUSTERS", "ev.pgcluster.*"), durables: ["postgres-manager-read-model"] },
      // A cluster is an app of machines: the manager creates (and destroys) the app and its members.
      writer("APPS", "ev.app.*"),
      writer("MACHINES", "ev.machine.*.*"),
      // The cluster app's credentials, sealed; it opens the member agents' token. Apps' secrets only.
      { stream: "SECRETS", read: true, append: ["ev.secret.app.*"], readOnly: "ev.secret.app.>" },
      // The members' volumes are made, attached and destroyed through the volume service.
      reader("VOLUMES"),
    ],
    // hangar-leases: only the holder of the postgres-manager lease fails clusters over.
    kv: [{ bucket: "hangar-leases", write: true }],
    // PG_BACKUPS: the clusters' WAL archive and base backups, stored and read back by the manager only.
    objects: [{ bucket: "PG_BACKUPS", write: true }],
    publish: ["cmd.placement.place", "cmd.volume.create", "cmd.volume.attach", "cmd.volume.destroy"],
    // An import's answer carries the last lines of its temporary machine (logs.<app>.<region>.<machine>).
    subscribe: ["logs.*.*.*"],
    serves: ["cmd.postgres.*"],
  },
  {
    user: "webhooks",
    role: "webhooks: their delivery log, and the signed deliveries of the event feed (docs/webhooks.md)",
    streams: [
      writer("WEBHOOKS", "ev.webhook.*"),
      // APPS: which org an app is in, for the events' org; EVENTS: the feed, on its durable consumer,
      // and direct gets by sequence for the retries of events no longer in memory.
      reader("APPS"),
      { ...reader("EVENTS"), durables: ["webhooks"] },
    ],
    // hangar-leases: only the holder of the webhooks-deliveries lease sends deliveries.
    kv: [{ bucket: "hangar-leases", write: true }],
    objects: [],
    publish: [],
    subscribe: [],
    serves: ["cmd.webhooks.*"],
  },
  {
    user: "builder",
    role: "image builds",
    // APPS: which org holds each app, so a build's FROM may not reach another org's images.
    // SECRETS: the orgs' sealed registry credentials (HANGAR_REGISTRY_AUTH) FROM pulls with, and the
    // apps' sealed secrets RUN --mount=type=secret falls back to: the whole stream (WHOLE_SECRETS).
    // MACHINES: each machine config's [[statics]], taken out of its image into hangar-statics.
    streams: [writer("BUILDS", "ev.build.*.*"), reader("APPS"), reader("SECRETS"), reader("MACHINES")],
    kv: [
      { bucket: "hangar-registry", write: true },
      // Pushing an image links its blobs to its repository.
      { bucket: "hangar-registry-links", write: true },
      { bucket: "hangar-build-cache", write: true },
    ],
    objects: [
      { bucket: "hangar-blobs", write: true },
      // A build's context is deleted by the builder once the build has ended.
      { bucket: "hangar-build-contexts", write: true },
      // The files of the apps' [[statics]], read out of their images for the proxy.
      { bucket: "hangar-statics", write: true },
    ],
    publish: ["logs.build.*.*"],
    subscribe: [],
    serves: [],
  },
  {
    user: "proxy",
    role: "the edge proxy: reads routes, wakes machines through the gateway, runs the edge apps",
    // RELEASES: each edge app's live release (the bundle it runs).
    // SECRETS: the apps' sealed secrets, opened as an edge app's `env` when it is deployed into the
    // runtime, as a host agent opens a machine's; never an org's.
    streams: [reader("APPS"), reader("MACHINES"), reader("RELEASES"), reader("SECRETS", "ev.secret.app.>")],
    // hangar-edge-cache: the edge apps' `fly.cache`, shared by every proxy and worker.
    kv: [{ bucket: "hangar-edge-cache", write: true }],
    // hangar-statics: the files of the apps' [[statics]] it serves without their machines;
    // hangar-edge-bundles: the edge apps' code.
    objects: [
      { bucket: "hangar-statics", write: false },
      { bucket: "hangar-edge-bundles", write: false },
    ],
    // logs.<app>.<region>.<id>: the edge apps' console lines, for `hangar logs`.
    publish: ["load.*", "proxy.heartbeat.*", "cmd.machines.wake", "logs.*.*.*"],
    subscribe: [],
    serves: [],
  },
  {
    user: "scheduler",
    role: "the autoscaler and the release orchestrator",
    streams: [
      reader("APPS"),
      writer("MACHINES", "ev.machine.*.*"),
      writer("SCALING", "ev.scale.*"),
      writer("RELEASES", "ev.release.*"),
      reader("VOLUMES"),
    ],
    // hangar-leases: only the holder of the scheduler lease decides and acts; the others stand by.
    kv: [{ bucket: "hangar-leases", write: true }],
    objects: [],
    // cmd.volume.create/attach/detach: a deploy of an app with [mounts] puts each new machine on a
    // volume (an unattached one of the mount's name, else a new one); never destroy, extend or snapshot.
    publish: ["cmd.placement.place", "cmd.volume.create", "cmd.volume.attach", "cmd.volume.detach"],
    subscribe: ["load.*", "proxy.heartbeat.*"],
    serves: [],
  },
  {
    user: "monitor",
    role: "machine metrics and the durable consumers' lag",
    streams: [reader("MACHINES")],
    kv: [],
    objects: [],
    publish: [],
    subscribe: [],
    serves: [],
    listsConsumers: true,
  },
  {
    user: SUBSCRIBER_USER,
    role: "in-cluster subscribers (not a service): read the event feed, with durable consumers of their own",
    // EVENTS only (docs/events.md, "In-cluster subscribers"): not the aggregate streams it sources, nor
    // any other. Looks EVENTS up but never creates it, and publishes nothing else.
    streams: [{ stream: "EVENTS", read: true, append: [], lookupOnly: true, ownDurables: true }],
    kv: [],
    objects: [],
    publish: [],
    subscribe: [],
    serves: [],
  },
];

/** The user of one host's agent: its own host's subjects only, never another host's. */
/**
 * The host id made from a name that may hold characters a NATS subject token may not (a Kubernetes
 * node's name: ip-10-0-0-1.ec2.internal is ip-10-0-0-1-ec2-internal): each character other than a
 * letter, digit, _ or - becomes -.
 */
export function hostIdFromName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "-");
}

export function hostAgentUser(hostId: string): NatsUserSpec {
  if (!/^[A-Za-z0-9_-]+$/.test(hostId)) throw new Error(`invalid host id ${JSON.stringify(hostId)}`);
  return hostAgentTemplate(hostId);
}

/** The host agent's entry with `hostId` put in as is: `<host>` in the docs. */
export function hostAgentTemplate(hostId: string): NatsUserSpec {
  return {
    user: `host-agent-${hostId}`,
    role: `the host agent of host ${hostId}`,
    // APPS: the org of an app, which picks the id range its machines run as and their 6PN network.
    // SECRETS: the sealed app secrets it opens just in time when one of its machines starts, and
    // the orgs' registry credentials (HANGAR_REGISTRY_AUTH) it pulls their images with (no machine
    // gets an org secret): the whole stream (WHOLE_SECRETS).
    streams: [
      writer("MACHINES", "ev.machine.*.*"),
      writer("HOSTS", `ev.host.${hostId}`),
      reader("APPS"),
      reader("SECRETS"),
      // Which disks on this host belong to volumes that exist (its reconcile at start).
      reader("VOLUMES"),
    ],
    // hangar-6pn: the agents allocate each org's 6PN prefix there (create-only keys).
    // hangar-registry, -links and hangar-blobs: an image of an upstream registry (and a platform-made
    // base) is pulled through Hangar's registry, so the agent stores its verified blobs, links them
    // to the upstream's cache repository and records its manifest there.
    kv: [
      { bucket: "hangar-registry", write: true },
      { bucket: "hangar-registry-links", write: true },
      { bucket: "hangar-6pn", write: true },
    ],
    // VOLUME_SNAPSHOTS: its volumes' snapshots, stored and restored by the agent.
    objects: [
      { bucket: "hangar-blobs", write: true },
      { bucket: "VOLUME_SNAPSHOTS", write: true },
    ],
    // cmd.volume.auto_extend.<id>: auto-extend of a volume mounted here past its threshold (the
    // volume service refuses one of another host's volumes); never cmd.volume.extend or any other
    // volume command.
    publish: [`hosts.heartbeat.${hostId}`, "logs.*.*.*", `cmd.volume.auto_extend.${hostId}`],
    subscribe: [],
    // cmd.host.<id>.volume.*: the volume service's disk commands.
    serves: [`cmd.host.${hostId}.*`, `cmd.host.${hostId}.volume.*`],
  };
}

/** Every user of a platform whose hosts are `hostIds`, the operator excluded. */
export function natsUsers(hostIds: readonly string[]): NatsUserSpec[] {
  return [...SERVICE_USERS, ...hostIds.map(hostAgentUser)];
}

const API = "$JS.API";

/**
 * What reading a stream takes: ephemeral consumers (create, info, delete), direct gets, flow control,
 * and the leader's message get, which getStoredMessage uses on a replicated stream (a follower's
 * direct get can miss what was just acknowledged). A reader limited to some subjects gets no
 * message get: its request names no subject, so it could read any message of the stream.
 */
function streamReadSubjects(stream: string, readOnly?: string): string[] {
  if (readOnly !== undefined) {
    return [
      `${API}.CONSUMER.CREATE.${stream}.*.${readOnly}`,
      `${API}.CONSUMER.INFO.${stream}.*`,
      `${API}.CONSUMER.DELETE.${stream}.*`,
      `${API}.DIRECT.GET.${stream}.${readOnly}`,
      `$JS.FC.${stream}.>`,
    ];
  }
  return [
    `${API}.CONSUMER.CREATE.${stream}.>`,
    `${API}.CONSUMER.INFO.${stream}.*`,
    `${API}.CONSUMER.DELETE.${stream}.*`,
    `${API}.DIRECT.GET.${stream}`,
    `${API}.DIRECT.GET.${stream}.>`,
    `${API}.STREAM.MSG.GET.${stream}`,
    `$JS.FC.${stream}.>`,
  ];
}

/**
 * What ensuring a stream takes: info and create (a create never changes an existing stream), and
 * update only for a writer: a reader could otherwise change a stream's limits under its writers.
 */
function ensureSubjects(stream: string, update: boolean): string[] {
  const subjects = [`${API}.STREAM.INFO.${stream}`, `${API}.STREAM.CREATE.${stream}`];
  return update ? [...subjects, `${API}.STREAM.UPDATE.${stream}`] : subjects;
}

/** Whether a user's entry lets it append to (and so update) `stream`. */
export function appendsTo(spec: NatsUserSpec, stream: string): boolean {
  return spec.streams.some((g) => g.stream === stream && g.append.length > 0);
}

/** Whether a user's entry lets it update `stream`'s configuration: its writers, and a grant that `updates`. */
export function updatesStream(spec: NatsUserSpec, stream: string): boolean {
  return appendsTo(spec, stream) || spec.streams.some((g) => g.stream === stream && g.updates === true);
}

/** The table's entry of a service (for a host agent, of its host); undefined for one not in the table. */
export function natsUserOf(service: string, hostId?: string): NatsUserSpec | undefined {
  if (service === "host-agent" && hostId !== undefined) return hostAgentUser(hostId);
  return SERVICE_USERS.find((u) => u.user === service);
}

/** The JetStream subjects behind a stream, KV or Object Store grant. */
function jetStreamSubjects(spec: NatsUserSpec): string[] {
  const out: string[] = [];
  for (const s of spec.streams) {
    if (s.lookupOnly) out.push(`${API}.STREAM.INFO.${s.stream}`);
    else out.push(...ensureSubjects(s.stream, s.append.length > 0 || s.updates === true));
    if (s.read) out.push(...streamReadSubjects(s.stream, s.readOnly));
    if (s.ownDurables) out.push(`${API}.CONSUMER.MSG.NEXT.${s.stream}.*`, `$JS.ACK.${s.stream}.*.>`);
    for (const name of s.durables ?? [])
      out.push(`${API}.CONSUMER.MSG.NEXT.${s.stream}.${name}`, `$JS.ACK.${s.stream}.${name}.>`);
    out.push(...s.append);
  }
  for (const { bucket, write } of spec.kv) {
    const stream = `KV_${bucket}`;
    // Kvm.create looks the bucket up and creates it when missing; keys() and watch() are consumers.
    out.push(`${API}.STREAM.INFO.${stream}`, `${API}.STREAM.CREATE.${stream}`, ...streamReadSubjects(stream));
    if (write) out.push(`$KV.${bucket}.>`);
  }
  for (const { bucket, write } of spec.objects) {
    const stream = `OBJ_${bucket}`;
    // An object's metadata is read with a stream message get, its chunks with a push consumer.
    out.push(`${API}.STREAM.INFO.${stream}`, `${API}.STREAM.CREATE.${stream}`, ...streamReadSubjects(stream));
    // Replacing or deleting an object purges its old chunks.
    if (write) out.push(`$O.${bucket}.>`, `${API}.STREAM.PURGE.${stream}`);
  }
  if (spec.listsConsumers) out.push(`${API}.STREAM.NAMES`, `${API}.CONSUMER.LIST.*`);
  // jetstreamManager() checks that JetStream answers before anything else.
  if (out.length > 0) out.unshift(`${API}.INFO`);
  return out;
}

/**
 * The exact publish and subscribe permissions of a user, among `users` (whose durable consumers a
 * user with `ownDurables` on the same stream is refused).
 */
export function permissionsOf(
  spec: NatsUserSpec,
  users: readonly NatsUserSpec[] = SERVICE_USERS,
): NatsPermissions {
  const publish = [...jetStreamSubjects(spec), ...spec.publish];
  // Replies (requests, JetStream API answers, acknowledgements, push deliveries) all land below the
  // user's own inbox prefix, so nobody can read another user's replies.
  const subscribe = [`${inboxPrefixOf(spec.user)}.>`, ...spec.subscribe, ...spec.serves];
  return {
    publish: unique(publish),
    subscribe: unique(subscribe),
    allowResponses: spec.serves.length > 0,
    denyPublish: unique(othersDurableSubjects(spec, users)),
  };
}

/** Creating, pulling, acknowledging or deleting the other users' durables of the streams `spec` makes its own durables on. */
function othersDurableSubjects(spec: NatsUserSpec, users: readonly NatsUserSpec[]): string[] {
  const out: string[] = [];
  for (const { stream } of spec.streams.filter((g) => g.ownDurables)) {
    for (const other of users.filter((u) => u.user !== spec.user)) {
      for (const name of other.streams.find((g) => g.stream === stream)?.durables ?? []) {
        out.push(
          `${API}.CONSUMER.CREATE.${stream}.${name}`,
          `${API}.CONSUMER.CREATE.${stream}.${name}.>`,
          `${API}.CONSUMER.DURABLE.CREATE.${stream}.${name}`,
          `${API}.CONSUMER.DELETE.${stream}.${name}`,
          `${API}.CONSUMER.MSG.NEXT.${stream}.${name}`,
          `$JS.ACK.${stream}.${name}.>`,
        );
      }
    }
  }
  return out;
}

function unique(subjects: string[]): string[] {
  return [...new Set(subjects)];
}
