import type { Command } from "commander";
import type { AuditEvent } from "../auth-types.js";
import { type Context, printJson } from "../context.js";
import { positiveInt } from "../options.js";
import { formatTable } from "../table.js";

/** The table of `hangar audit`, newest first as the API lists them. */
export function auditTable(events: AuditEvent[]): string {
  const rows = events.map((e) => [
    e.time.replace("T", " ").replace(/\.\d+Z$/, "Z"),
    e.action,
    e.target,
    e.app,
    e.org,
    `${e.token_id} (${e.token_kind})`,
    String(e.status),
  ]);
  return formatTable(["TIME", "ACTION", "TARGET", "APP", "ORG", "TOKEN", "STATUS"], rows);
}

/** `hangar audit`: the audit trail of an app, an org, or (operator) everything. */
export function registerAudit(program: Command, ctx: Context): void {
  program
    .command("audit")
    .description("show who changed what: every successful mutating call, newest first")
    .option("-a, --app <name>", "one app's calls")
    .option("-o, --org <slug>", "one org's calls (default: the org of the token in use)")
    .option("--limit <n>", "how many calls (1-1000, default 100)", positiveInt)
    .option("--before <seq>", "calls older than this sequence (the next page)", positiveInt)
    .option("--json", "print the API's JSON")
    .action(
      async (flags: { app?: string; org?: string; limit?: number; before?: number; json?: boolean }) => {
        const page = await (await ctx.api()).listAudit({
          app: flags.app,
          org: flags.org,
          limit: flags.limit,
          before: flags.before,
        });
        if (flags.json) return printJson(ctx, page);
        if (page.events.length === 0) return ctx.out("No audited calls\n");
        ctx.out(auditTable(page.events));
        if (page.next_before !== null) ctx.err(`Older calls: hangar audit --before ${page.next_before}\n`);
      },
    );
}
