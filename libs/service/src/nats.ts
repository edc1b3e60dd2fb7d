import { readFileSync } from "node:fs";
import { connect, type NatsConnection, nkeyAuthenticator } from "@nats-io/transport-node";

/** How a service proves who it is to nats-server; without a creds file it connects unauthenticated. */
export interface NatsAuth {
  /** A file holding the user's nkey seed (`SU...`), as written by `writeNatsCredentials`. */
  credsFile?: string;
  /** The NATS user (`natsUserName`): names the reply inbox prefix its permissions allow. */
  user?: string;
}

/** The NATS user of a service (`gateway`, ...) or of one host's agent (`host-agent-<hostId>`). */
export function natsUserName(service: string, hostId?: string): string {
  if (service === "host-agent") {
    if (hostId === undefined || hostId === "") throw new Error("a host agent's NATS user needs its host id");
    return `host-agent-${hostId}`;
  }
  return service;
}

/** The reply inbox prefix of a user: its permissions let it subscribe only below this prefix. */
export function inboxPrefixOf(user: string): string {
  return `_INBOX_${user}`;
}

/** A NATS connection for a long-running service: named, reconnecting forever, as its own user. */
export function connectNats(servers: string, name: string, auth: NatsAuth = {}): Promise<NatsConnection> {
  return connect({
    servers: servers.split(","),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // A service starting before nats-server keeps trying instead of failing at once.
    waitOnFirstConnect: true,
    ...natsAuthOptions(auth),
  });
}

/** The connect options that authenticate as `auth.user` with the seed in `auth.credsFile`. */
export function natsAuthOptions(auth: NatsAuth): {
  authenticator?: ReturnType<typeof nkeyAuthenticator>;
  inboxPrefix?: string;
} {
  const opts: { authenticator?: ReturnType<typeof nkeyAuthenticator>; inboxPrefix?: string } = {};
  // Read at every (re)connect, so a rotated seed file is picked up without a restart.
  if (auth.credsFile !== undefined) {
    const file = auth.credsFile;
    opts.authenticator = nkeyAuthenticator(() => new TextEncoder().encode(readFileSync(file, "utf8").trim()));
  }
  if (auth.user !== undefined) opts.inboxPrefix = inboxPrefixOf(auth.user);
  return opts;
}
