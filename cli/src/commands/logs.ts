import type { Command } from "commander";
import { CliError } from "../cli-error.js";
import { requireNats } from "../config.js";
import type { Context } from "../context.js";
import { formatLogLine, logSubject, parseLogLine } from "../logs.js";

interface LogsFlags {
  app: string;
  machine?: string;
  region?: string;
}

async function follow(ctx: Context, flags: LogsFlags): Promise<void> {
  const url = requireNats(await ctx.config());
  let subject: string;
  try {
    subject = logSubject(flags.app, { region: flags.region, machineId: flags.machine });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  // Loaded here so that the other commands do not pay for the NATS client at start-up.
  const { connect } = await import("@nats-io/transport-node");
  const nc = await connect({ servers: url, name: "hangar-logs", maxReconnectAttempts: -1 }).catch(
    (err: Error) => {
      throw new CliError(`cannot reach NATS at ${url}: is \`npm start\` running? (${err.message})`);
    },
  );
  const sub = nc.subscribe(subject);
  await nc.flush();
  const stop = () => void nc.close();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") ctx.err("connection to NATS lost, reconnecting...\n");
      if (s.type === "reconnect") ctx.err("reconnected to NATS\n");
    }
  })();
  ctx.err(`Following the logs of ${subject} (Ctrl-C to stop)\n`);
  for await (const msg of sub) {
    const text = msg.string();
    const log = parseLogLine(text);
    // Something that is not a LogLine is still output someone sent; show it rather than drop it.
    ctx.out(`${log ? formatLogLine(log) : text}\n`);
  }
  const closed = await nc.closed();
  if (closed) throw new CliError(`NATS connection closed: ${closed.message}`);
}

/** `hangar logs`: follows machines' output live over NATS until Ctrl-C. */
export function registerLogs(program: Command, ctx: Context): void {
  program
    .command("logs")
    .description("follow the output of an app's machines as it is printed (no history), until Ctrl-C")
    .requiredOption("-a, --app <name>", "app")
    .option("-m, --machine <id>", "only this machine")
    .option("-r, --region <region>", "only machines in this region")
    .action((flags: LogsFlags) => follow(ctx, flags));
}
