import { type KvBucketOptions, openKvBucket } from "@hangar/service";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { type OrgNetwork, orgNetCandidate, orgNetwork } from "./sixpn.js";

/** The KV bucket of 6PN org prefixes: `org.<slug>` -> "XXXX:XXXX" and `net.<XXXXXXXX>` -> slug, both create-only. */
export const SIXPN_BUCKET = "hangar-6pn";

/** How many candidates an org tries before giving up: 2^32 nets make even a handful of collisions unlikely. */
const MAX_ATTEMPTS = 64;

/**
 * The 6PN prefix of each organization, allocated once for the whole platform and never changed. Every
 * host agent allocates through the same create-only keys: agents racing for one org try the same
 * candidates in the same order, so they end on the winner's net; a net already taken by another org
 * moves on to the org's next candidate.
 */
export class OrgNetworks {
  private readonly known = new Map<string, OrgNetwork>();
  private readonly pending = new Map<string, Promise<OrgNetwork>>();

  private constructor(private readonly kv: KV) {}

  /** Opens (creating if needed) the bucket. */
  static async open(nc: NatsConnection, opts: KvBucketOptions = {}): Promise<OrgNetworks> {
    const kv = await openKvBucket(nc, opts.bucket ?? SIXPN_BUCKET, opts);
    return new OrgNetworks(kv);
  }

  /** The org's network, allocating its prefix on first use. */
  of(org: string): Promise<OrgNetwork> {
    const known = this.known.get(org);
    if (known) return Promise.resolve(known);
    let pending = this.pending.get(org);
    if (!pending) {
      pending = this.allocate(org).finally(() => this.pending.delete(org));
      this.pending.set(org, pending);
    }
    return pending;
  }

  private async allocate(org: string): Promise<OrgNetwork> {
    if (org === "") throw new Error("an org's 6PN network needs its slug");
    const orgKey = `org.${keyToken(org)}`;
    let net = await this.read(orgKey);
    for (let attempt = 0; net === undefined; attempt++) {
      if (attempt === MAX_ATTEMPTS)
        throw new Error(`no free 6PN prefix for org ${org} after ${MAX_ATTEMPTS} candidates`);
      const candidate = orgNetCandidate(org, attempt);
      // The net first: an org key only ever names a net its org holds.
      if ((await this.claim(`net.${candidate}`, org)) !== org) continue;
      net = await this.claim(orgKey, `${candidate.slice(0, 4)}:${candidate.slice(4)}`);
    }
    const network = orgNetwork(org, net.replace(":", ""));
    this.known.set(org, network);
    return network;
  }

  /** Creates `key` with `value` unless it exists; either way, returns the value it holds. */
  private async claim(key: string, value: string): Promise<string> {
    try {
      await this.kv.create(key, value);
      return value;
    } catch (err) {
      const held = await this.read(key);
      if (held === undefined) throw err;
      return held;
    }
  }

  private async read(key: string): Promise<string | undefined> {
    const entry = await this.kv.get(key);
    return entry && entry.operation === "PUT" ? entry.string() : undefined;
  }
}

/**
 * An org slug as one KV key token: as is when it is letters, digits, _ and -, else `=` and its
 * base64url (`=` never starts a plain slug's token, so the two never meet).
 */
function keyToken(org: string): string {
  return /^[A-Za-z0-9_-]+$/.test(org) ? org : `=${Buffer.from(org).toString("base64url")}`;
}
