import type { NatsConnection } from "@nats-io/transport-node";
import type { HealthReport } from "./ops-server.js";

/** Whether a NATS connection is up now, following its status events. */
export interface ConnectionWatch {
  readonly connected: boolean;
  /** When it last went down (ms since the epoch), while it is down. */
  readonly downSince: number | undefined;
}

/**
 * Follows `nc.status()`: down on disconnect and close, up again on reconnect. The connection is up
 * when this starts (connectNats resolves once connected).
 */
export function watchConnection(nc: NatsConnection, now: () => number = Date.now): ConnectionWatch {
  const state = { connected: true, downSince: undefined as number | undefined };
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect" || status.type === "close") {
        if (state.connected) state.downSince = now();
        state.connected = false;
      } else if (status.type === "reconnect") {
        state.connected = true;
        state.downSince = undefined;
      }
    }
  })();
  return state;
}

/** What /health says: ready only when the service has replayed, says ok, and NATS is connected. */
export function readiness(service: HealthReport | undefined, nats: ConnectionWatch): HealthReport {
  const connection = nats.connected
    ? { nats: "connected" }
    : { nats: "disconnected", nats_down_since: new Date(nats.downSince ?? 0).toISOString() };
  if (service === undefined) return { ok: false, replayed: false, ...connection };
  return { ...service, ok: service.ok && nats.connected, replayed: true, ...connection };
}
