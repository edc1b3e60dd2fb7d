import { createInbox, type NatsConnection } from "@nats-io/transport-node";

/**
 * A new inbox subject under the connection's `inboxPrefix`: a user of a secured server may subscribe
 * only below its own prefix. The public NatsConnection type does not expose the options; nats.js's
 * JetStream reads them from the connection object the same way.
 */
export function inboxFor(nc: NatsConnection): string {
  return createInbox((nc as NatsConnection & { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
}
