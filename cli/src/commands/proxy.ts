import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { adoptForRelay, pipeBothWays } from "@hangar/config";
import type { Command } from "commander";
import type { ApiClient } from "../api.js";
import { loadAppConfig, resolveAppName } from "../app-config.js";
import { CliError } from "../cli-error.js";
import { type Context, printJson } from "../context.js";
import { describeError } from "../errors.js";
import { parseProxyPorts } from "../tunnel.js";

interface ProxyFlags {
  app?: string;
  machine?: string;
  bind: string;
  json?: boolean;
}

/**
 * Checks before listening what every connection would be refused for: the token, the app, and a
 * started machine (the one given, or any of the app's).
 */
export async function checkReachable(
  api: ApiClient,
  app: string,
  machineId: string | undefined,
): Promise<void> {
  const start = (id: string) => `start it with \`hangar machine start ${id} -a ${app}\``;
  if (machineId) {
    const machine = await api.getMachine(app, machineId);
    // The API answers a destroyed machine too (as Fly's does); it cannot be started again.
    if (machine.state === "destroyed" || machine.state === "destroying")
      throw new CliError(
        `machine ${machineId} is ${machine.state}`,
        `pick a started one from \`hangar machine list -a ${app}\``,
      );
    if (machine.state !== "started")
      throw new CliError(`machine ${machineId} is ${machine.state}: it must be started`, start(machineId));
    return;
  }
  const machines = await api.listMachines(app);
  if (!machines.some((m) => m.state === "started"))
    throw new CliError(
      `app ${app} has no started machine`,
      machines[0] ? start(machines[0].id) : `deploy it with \`hangar deploy -a ${app}\``,
    );
}

async function proxy(
  ctx: Context,
  ports: { local: number; remote: number },
  flags: ProxyFlags,
): Promise<void> {
  const app = resolveAppName(flags.app, flags.app ? undefined : await loadAppConfig(ctx.cwd));
  const api = await ctx.api();
  await checkReachable(api, app, flags.machine);
  // Half-open: a client that ends its request still gets the whole answer. Paused until its tunnel
  // is open; its reads then go into a reused buffer (adoptForRelay), as the tunnel's side does.
  const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (accepted) => {
    const local = adoptForRelay(accepted);
    local.on("error", () => local.destroy());
    api.openTunnel(app, flags.machine, "tunnel", { port: ports.remote }).then(
      (remote) => {
        pipeBothWays(local, remote);
        local.resume();
      },
      (err: unknown) => {
        ctx.err(
          describeError(err)
            .map((line) => `${line}\n`)
            .join(""),
        );
        local.destroy();
      },
    );
  });
  server.listen(ports.local, flags.bind);
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([err]) => {
      throw new CliError(`cannot listen on ${flags.bind}:${ports.local}: ${(err as Error).message}`);
    }),
  ]);
  const local = (server.address() as AddressInfo).port;
  if (flags.json) printJson(ctx, { app, local_port: local, remote_port: ports.remote, bind: flags.bind });
  else ctx.out(`Proxying local port ${local} to remote [${app}]:${ports.remote}\n`);
  await ctx.untilInterrupted();
  server.close();
  // Tunnels still open die with the process: a proxy stopped by Ctrl-C is done.
  server.unref();
}

/** `hangar proxy <local>[:<remote>] -a <app>`: forwards a local port to a port of the app's machines. */
export function registerProxy(program: Command, ctx: Context): void {
  program
    .command("proxy")
    .description(
      "forward a local port to a port of an app's machine through the gateway, until Ctrl-C " +
        "(`hangar proxy 15432:5432 -a db`; `<local>` alone uses the same remote port; local 0 picks a free one)",
    )
    .argument("<ports>", "<local>[:<remote>]", parseProxyPorts)
    .option("-a, --app <name>", "app (default: `app` in hangar.toml or fly.toml here)")
    .option(
      "--machine <id>",
      "the machine to reach (default: any started machine of the app, per connection)",
    )
    .option("-b, --bind <address>", "the local address to listen on", "127.0.0.1")
    .option("--json", "print where it listens as JSON")
    .action((ports: { local: number; remote: number }, flags: ProxyFlags) => proxy(ctx, ports, flags));
}
