import {
  appsStream,
  machinesStream,
  pgclustersStream,
  releasesStream,
  scalingStream,
  volumesStream,
} from "@hangar/domain";
import { type AggregateStream, decodeBatch, isAppended, type RecordedEvent } from "@hangar/eventstore";
import type { MsgHdrs } from "@nats-io/transport-node";
import { originalSubject } from "./stream.js";

/** The version of the public event's shape (docs/events.schema.json). */
export const EVENT_SCHEMA = "hangar.event.v1";

/** An event as subscribers see it: the SSE `data`, a webhook's body, `hangar events --json`. */
export interface PublicEvent {
  /** Its position in the EVENTS stream: `<seq>`, or `<seq>.<index>` when that message holds several events. */
  id: string;
  schema: typeof EVENT_SCHEMA;
  /** `<aggregate>.<event>`, e.g. `machine.started`, `release.created`. */
  type: string;
  app: string | null;
  org: string | null;
  /** When the event was recorded, ISO-8601 (UTC). */
  time: string;
  /** The aggregate id: `<app>.<machine_id>`, `<app>`, `<app>.<volume_id>`, `<cluster>`. */
  subject: string;
  /** The event's fields, snake_case, without anything secret. */
  data: Record<string, unknown>;
}

/** A position in the feed: after message `seq` (all of it), or after its event `index`. */
export interface FeedPosition {
  seq: number;
  index?: number;
}

/** Which org an app (or a Postgres cluster) is in; undefined when not known. */
export interface OrgResolver {
  orgOfApp(app: string): string | undefined;
  orgOfCluster?(cluster: string): string | undefined;
}

interface FeedSource {
  stream: AggregateStream<{ type: string }>;
  /** The public aggregate name: the part of the type before the dot. */
  aggregate: string;
  /** Prefixes of the protobuf short names, longest first, cut off to form the event name. */
  prefixes: readonly string[];
  /** Whether the aggregate id starts with the app name (`<app>` or `<app>.<id>`). */
  appScoped: boolean;
}

const SOURCES: readonly FeedSource[] = [
  { stream: appsStream, aggregate: "app", prefixes: ["App"], appScoped: true },
  { stream: machinesStream, aggregate: "machine", prefixes: ["Machine"], appScoped: true },
  { stream: releasesStream, aggregate: "release", prefixes: ["Release"], appScoped: true },
  { stream: scalingStream, aggregate: "scaling", prefixes: ["Scale"], appScoped: true },
  { stream: volumesStream, aggregate: "volume", prefixes: ["Volume"], appScoped: true },
  { stream: pgclustersStream, aggregate: "pgcluster", prefixes: ["PgCluster", "Pg"], appScoped: false },
];

/** The aggregate streams EVENTS sources, unprefixed. */
export const FEED_STREAMS: readonly AggregateStream<{ type: string }>[] = SOURCES.map((s) => s.stream);

const snake = (name: string): string =>
  name.replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase());

function eventName(source: FeedSource, shortType: string): string {
  const prefix = source.prefixes.find((p) => shortType.startsWith(p) && shortType.length > p.length) ?? "";
  return `${source.aggregate}.${snake(shortType.slice(prefix.length))}`;
}

/** Every public event type, sorted. */
export const PUBLIC_EVENT_TYPES: readonly string[] = SOURCES.flatMap((s) =>
  s.stream.codec.types.map((t) => eventName(s, t)),
).sort();

const TYPE_SET: ReadonlySet<string> = new Set(PUBLIC_EVENT_TYPES);

/** Whether `type` names a public event type. */
export const isPublicEventType = (type: string): boolean => TYPE_SET.has(type);

/** The public type of an event of the aggregate stream named `streamName` (unprefixed, e.g. "MACHINES"). */
export function publicEventType(streamName: string, shortType: string): string {
  const source = SOURCES.find((s) => s.stream.name === streamName);
  if (!source) throw new Error(`stream ${streamName} is not in the event feed`);
  return eventName(source, shortType);
}

/** `<seq>` or `<seq>.<index>`, decimal, as `PublicEvent.id` writes it; undefined for anything else. */
export function parseEventId(id: string): FeedPosition | undefined {
  const m = /^(\d{1,15})(?:\.(\d{1,6}))?$/.exec(id.trim());
  if (!m) return undefined;
  const seq = Number(m[1]);
  return m[2] === undefined ? { seq } : { seq, index: Number(m[2]) };
}

/** The id of event `index` of the `count` events of EVENTS message `seq`. */
export const eventIdOf = (seq: number, index: number, count: number): string =>
  count === 1 ? String(seq) : `${seq}.${index}`;

/** Field names whose values never leave the platform: sealed values, passwords, tokens, keys. */
const SECRET_KEY = /password|secret|token|sealed|cipher|private_key|credential|nonce/i;

/**
 * A protobuf message as plain JSON: snake_case keys, int64 as numbers, defaults present, and secret
 * fields left out. `config_json` (a machine's or an app's whole config: env, files) is left out too;
 * its image, the part subscribers ask about, is kept as `image`.
 */
export function publicData(message: unknown): Record<string, unknown> {
  const ctor = (message as { constructor?: { toObject?: (m: unknown, o: object) => unknown } }).constructor;
  const plain = ctor?.toObject
    ? ctor.toObject(message, { longs: Number, enums: String, bytes: String, defaults: true, arrays: true })
    : message;
  return clean(plain) as Record<string, unknown>;
}

function clean(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clean);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = snake(key);
    if (SECRET_KEY.test(name)) continue;
    if (name === "config_json") {
      const image = imageOf(v);
      if (image !== undefined) out.image = image;
      continue;
    }
    out[name] = clean(v);
  }
  return out;
}

function imageOf(configJson: unknown): string | undefined {
  if (typeof configJson !== "string" || configJson === "") return undefined;
  try {
    const config = JSON.parse(configJson) as { image?: unknown; build?: { image?: unknown } };
    const image = config.image ?? config.build?.image;
    return typeof image === "string" ? image : undefined;
  } catch {
    return undefined;
  }
}

/** One EVENTS message as the feed reads it: its original subject, EVENTS sequence and body. */
export interface FeedMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** Its headers, where the reader has them: a message that is no event (isAppended) gives none. */
  headers?: MsgHdrs | undefined;
  /** A copy the server planted (SERVER_COPY_HEADER in @hangar/eventstore): no event, none to give. */
  readonly planted?: boolean | undefined;
}

/** Where a subject belongs: its source and aggregate id; undefined for a subject of no sourced stream. */
export function sourceOf(
  subject: string,
  prefix?: string,
): { source: FeedSource; aggregateId: string } | undefined {
  const head = prefix ? `${prefix}.` : "";
  const original = originalSubject(subject);
  if (!original.startsWith(head)) return undefined;
  const rest = original.slice(head.length);
  for (const source of SOURCES) {
    const p = `${source.stream.subjectPrefix}.`;
    if (rest.startsWith(p)) return { source, aggregateId: rest.slice(p.length) };
  }
  return undefined;
}

/** The cluster a pgcluster subject names, for resolvers that must look its org up first. */
export function clusterOfSubject(subject: string, prefix?: string): string | undefined {
  const found = sourceOf(subject, prefix);
  return found && !found.source.appScoped ? found.aggregateId : undefined;
}

/** One recorded event of `source` as a public event. */
export function toPublicEvent(
  source: FeedSource,
  recorded: RecordedEvent<{ type: string; data?: unknown }>,
  id: string,
  resolver: OrgResolver,
): PublicEvent {
  const aggregateId = recorded.aggregateId;
  const data = publicData(recorded.event.data);
  let app: string | null = null;
  let org: string | null = null;
  if (source.appScoped) {
    app = aggregateId.split(".")[0] ?? aggregateId;
    const created = recorded.event.type === "AppCreated" ? data.org_slug : undefined;
    org = (typeof created === "string" && created !== "" ? created : resolver.orgOfApp(app)) ?? null;
  } else {
    const attached = data.app;
    if (typeof attached === "string" && attached !== "") app = attached;
    const declared = recorded.event.type === "PgClusterCreateRequested" ? data.org : undefined;
    org =
      (typeof declared === "string" && declared !== "" ? declared : resolver.orgOfCluster?.(aggregateId)) ??
      null;
  }
  return {
    id,
    schema: EVENT_SCHEMA,
    type: eventName(source, recorded.event.type),
    app,
    org,
    time: new Date(recorded.timeUnixMs).toISOString(),
    subject: aggregateId,
    data,
  };
}

/**
 * One EVENTS message (a decision: one or more events) as its public events, in order. A message of a
 * stream the feed does not source gives none.
 */
export function toPublicEvents(
  msg: FeedMessage,
  resolver: OrgResolver,
  opts: { prefix?: string } = {},
): PublicEvent[] {
  const found = sourceOf(msg.subject, opts.prefix);
  if (!found || msg.planted) return [];
  let recorded: RecordedEvent<{ type: string }>[];
  try {
    recorded = decodeBatch(found.source.stream, msg.data, msg.seq);
  } catch (err) {
    // No event (isAppended): none to give. Its headers are read only then, as a rebuild reads them.
    if (!isAppended(msg.headers)) return [];
    throw err;
  }
  return recorded.map((r, i) =>
    toPublicEvent(found.source, r, eventIdOf(msg.seq, i, recorded.length), resolver),
  );
}
