import { connect, type NatsConnection } from "@nats-io/transport-node";

/** A NATS connection for a long-running service: named, reconnecting forever. */
export function connectNats(servers: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: servers.split(","),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // A service starting before nats-server keeps trying instead of failing at once.
    waitOnFirstConnect: true,
  });
}
