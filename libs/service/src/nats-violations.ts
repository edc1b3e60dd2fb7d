import { type NatsConnection, PermissionViolationError } from "@nats-io/transport-node";
import { Counter, type Registry } from "prom-client";

/** Where permission violations are reported: the service's logger (pino's shape). */
export interface ViolationLogger {
  error(obj: Record<string, unknown>, msg: string): void;
}

/**
 * Logs and counts every permission violation nats-server reports on this connection
 * (`hangar_nats_permission_violations_total{operation}`). nats.js reports them asynchronously, on the
 * status stream, as PermissionViolationError: a refused publish is otherwise silent, and a refused
 * subscription just ends. Either means the permission table and the code disagree, or a credential
 * is used for what its user may not do.
 */
export function reportPermissionViolations(
  nc: NatsConnection,
  logger: ViolationLogger,
  registry: Registry,
): void {
  const violations = new Counter({
    name: "hangar_nats_permission_violations_total",
    help: "Publishes and subscriptions nats-server refused to this service's NATS user",
    labelNames: ["operation"],
    registers: [registry],
  });
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== "error" || !(status.error instanceof PermissionViolationError)) continue;
      const { operation, subject } = status.error;
      violations.inc({ operation });
      logger.error({ operation, subject }, "NATS refused: not in this service's permissions");
    }
  })();
}
