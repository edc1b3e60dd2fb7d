import type { JetStreamManager, LastForMsgRequest, SeqMsgRequest, StoredMsg } from "@nats-io/jetstream";
import { PermissionViolationError } from "@nats-io/transport-node";

/** A stored message asked for by sequence, as the last on a subject, or as the next on a subject from a sequence. */
export type StoredMessageQuery = SeqMsgRequest | LastForMsgRequest | { seq: number; next_by_subj: string };

/** How long a stream's replica count is trusted before it is looked up again. */
const REPLICAS_TTL_MS = 30_000;
/** How long a failed look-up stands (the stream then counts as replicated). */
const LOOKUP_FAILURE_TTL_MS = 5_000;

interface Replication {
  replicated: Promise<boolean>;
  until: number;
}

const known = new WeakMap<JetStreamManager, Map<string, Replication>>();
const leaderReads = new WeakMap<JetStreamManager, (stream: string) => boolean>();

/**
 * Says which streams this client may read through the leader (`STREAM.MSG.GET`): the others are read
 * with direct gets, without asking the leader first. A service whose NATS user may read a stream only
 * by subject (the proxy on SECRETS) has no message get there; asking would be refused and counted
 * as a permission violation. Without it, every stream may be (and a refusal falls back as below).
 */
export function limitLeaderReads(jsm: JetStreamManager, allowed: (stream: string) => boolean): void {
  leaderReads.set(jsm, allowed);
}

/**
 * A stored message, read so that it holds every message acknowledged before the call.
 *
 * A direct get (allow_direct) is answered by any replica of a stream, and a client's requests go to
 * the replica on the server it is connected to: on a replicated stream that is often a follower,
 * which applies a message only after the leader has acknowledged it, so a read right after an
 * append misses it (seen on a 3-node cluster: an acknowledged event left out of an aggregate's
 * load). On a replicated stream this asks the stream's leader (`STREAM.MSG.GET`); on a stream of
 * one replica, where the only replica is the leader, it keeps the cheaper direct get. A stream's
 * replica count is looked up once per 30 s (an operator may scale a stream); one that cannot be
 * looked up just now is read from the leader; a client allowed direct gets only reads with them.
 */
export async function getStoredMessage(
  jsm: JetStreamManager,
  stream: string,
  query: StoredMessageQuery,
): Promise<StoredMsg | null> {
  if (leaderReads.get(jsm)?.(stream) !== false && (await isReplicated(jsm, stream))) {
    try {
      return await jsm.streams.getMessage(stream, query as SeqMsgRequest);
    } catch (err) {
      if (!isPermissionViolation(err)) throw err;
      // A reader limited to some of the stream's subjects has direct gets only (nats-permissions.ts):
      // it reads as before, and asks no more (permissions do not change while connected).
      streamsOf(jsm).set(stream, { replicated: Promise.resolve(false), until: Number.POSITIVE_INFINITY });
    }
  }
  return jsm.direct.getMessage(stream, query);
}

/** A header of a direct get's answer, which a planted copy holds once more (plantedStored). */
const SEQUENCE_HEADER = "Nats-Sequence";

/**
 * Whether a message read with getStoredMessage (or a direct get) is a copy the server planted: no
 * event (decodeStored, SERVER_COPY_HEADER). Such a copy was stored with the headers of a direct get's
 * answer, Nats-Sequence among them, naming the earlier message it copied; an answer adds its own,
 * which names the message read. So a Nats-Sequence other than the message's own gives it away,
 * however it was read: a direct get (the server's headers after the stored ones) or the leader's
 * message get (the stored ones alone).
 */
export function plantedStored(m: StoredMsg): boolean {
  const named = m.header?.values(SEQUENCE_HEADER) ?? [];
  return named.some((v) => Number(v) !== m.seq);
}

function streamsOf(jsm: JetStreamManager): Map<string, Replication> {
  let streams = known.get(jsm);
  if (!streams) {
    streams = new Map();
    known.set(jsm, streams);
  }
  return streams;
}

async function isReplicated(jsm: JetStreamManager, stream: string): Promise<boolean> {
  const streams = streamsOf(jsm);
  const now = Date.now();
  const cached = streams.get(stream);
  if (cached && cached.until > now) return cached.replicated;
  // One look-up for the callers that ask at once. A client not allowed to look the stream up is not
  // allowed the leader's get either: it reads with direct gets and asks no more. Any other failure (a
  // timeout, no leader during an election) counts as replicated for a few seconds: the leader's
  // answer is right either way, and an outage does not add a look-up to every read.
  const replicated = jsm.streams.info(stream).then(
    (info) => info.config.num_replicas > 1,
    (err: unknown) => {
      const entry = streams.get(stream);
      const denied = isPermissionViolation(err);
      if (entry?.replicated === replicated)
        entry.until = denied ? Number.POSITIVE_INFINITY : Date.now() + LOOKUP_FAILURE_TTL_MS;
      return !denied;
    },
  );
  streams.set(stream, { replicated, until: now + REPLICAS_TTL_MS });
  return replicated;
}

function isPermissionViolation(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof PermissionViolationError) return true;
  }
  return false;
}
