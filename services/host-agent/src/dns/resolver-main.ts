// The resolver process (ResolverProcess starts it): serves the host's internal DNS on its own event
// loop, so an answer never waits behind the agent's work (folding MACHINES, checks, exec, starts).
// Its name table comes from the agent over IPC; it exits when the agent goes.
import { createLogger } from "@hangar/telemetry";
import type { DnsMachine } from "./names.js";
import { InternalDns, type InternalDnsOptions } from "./server.js";

/** What the agent sends. */
export type ResolverCommand =
  | { t: "upsert"; m: DnsMachine }
  | { t: "remove"; app: string; id: string }
  | { t: "sync"; n: number };

/** What the resolver process answers. */
export type ResolverReply = { t: "ready" } | { t: "error"; message: string } | { t: "synced"; n: number };

const send = (reply: ResolverReply, then?: () => void) => process.send?.(reply, undefined, {}, then);
const opts = JSON.parse(process.argv[2] ?? "{}") as Omit<InternalDnsOptions, "logger"> & {
  logLevel?: string;
};
const logger = createLogger("host-agent-dns", { level: opts.logLevel ?? "info" });

try {
  const dns = await InternalDns.open({ ...opts, logger });
  process.on("message", (c: ResolverCommand) => {
    if (c.t === "upsert") dns.table.upsert(c.m);
    else if (c.t === "remove") dns.table.remove(c.app, c.id);
    else if (c.t === "sync") send({ t: "synced", n: c.n });
  });
  // The agent is gone (stopped or killed): its machines' names go with it until the next one.
  process.on("disconnect", () => void dns.close().finally(() => process.exit(0)));
  send({ t: "ready" });
} catch (err) {
  send({ t: "error", message: (err as Error).message }, () => process.exit(1));
}
