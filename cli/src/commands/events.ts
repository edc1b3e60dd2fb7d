import type { Command } from "commander";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import type { Context } from "../context.js";
import { formatEvent, parseSince, parseTypes, readEvents } from "../events.js";
import { readUntilInterrupted } from "../interrupt.js";

interface EventsFlags {
  app?: string;
  org?: string;
  follow?: boolean;
  json?: boolean;
  types?: string;
  since?: string;
}

async function printEvents(ctx: Context, flags: EventsFlags): Promise<void> {
  const types = flags.types === undefined ? undefined : parseTypes(flags.types);
  const since = flags.since === undefined ? undefined : parseSince(flags.since);
  // -a, else the app of hangar.toml / fly.toml here, else the whole org's feed.
  const loaded =
    flags.app === undefined && flags.org === undefined ? await loadAppConfig(ctx.cwd) : undefined;
  // The file's app only where it is an app's name (a template's "$APP_NAME" is refused, saying so).
  const app = flags.app ?? (loaded?.config.app ? resolveAppName(undefined, loaded) : undefined);
  const api = await ctx.api();
  await readUntilInterrupted(async (signal) => {
    const events = readEvents(
      api,
      {
        follow: flags.follow === true,
        ...(app ? { app } : {}),
        ...(flags.org ? { org: flags.org } : {}),
        ...(types ? { types } : {}),
        ...(since ? { since } : {}),
      },
      {
        signal,
        onResume: (lastId, reason) =>
          ctx.err(
            `event stream lost (${reason}); resuming ${lastId ? `after ${lastId}` : "from the start"}\n`,
          ),
      },
    );
    for await (const event of events) ctx.out(`${flags.json ? JSON.stringify(event) : formatEvent(event)}\n`);
  });
}

/** `hangar events`: what happened to an app (or the org), then, with --follow, new events as they happen. */
export function registerEvents(program: Command, ctx: Context): void {
  program
    .command("events")
    .description(
      "print recent platform events (machine state changes, releases, scaling, volumes, Postgres) and exit; with --follow, keep streaming",
    )
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here; else the whole org)")
    .option("-o, --org <slug>", "the org's events, when the token covers several")
    .option("-f, --follow", "keep streaming new events until Ctrl-C, resuming if the connection drops")
    .option(
      "--types <types>",
      "only these types, comma-separated (machine.started,release.created; machine.*)",
    )
    .option("--since <id>", "start after this event id (default: the last 100 of the feed)")
    .option("--json", "print each event as its JSON (schema hangar.event.v1), one per line")
    .action((flags: EventsFlags) => printEvents(ctx, flags));
}
