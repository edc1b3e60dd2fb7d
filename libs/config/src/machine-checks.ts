import type { AppConfig } from "./app-config.js";
import type { MachineConfigInput } from "./machine-config.js";

/** The fly_process_group of a machine check's test machine, as flyctl names it. */
export const TEST_MACHINE_GROUP = "fly_app_test_machine_command";

/** One `machine_checks` entry of fly.toml (top level, `[[services]]` or `[http_service]`). */
export type AppMachineCheck = NonNullable<AppConfig["machine_checks"]>[number];

/**
 * The machine checks a deploy runs against a new machine of `group`, as flyctl's runTestMachines
 * gathers them: those of every service (`[http_service]`, then `[[services]]`) whose `processes`
 * name the group or name none, then the top-level `[[machine_checks]]`.
 */
export function machineChecksFor(app: AppConfig, group: string): AppMachineCheck[] {
  const services = [...(app.http_service ? [app.http_service] : []), ...(app.services ?? [])];
  return [
    ...services.flatMap((s) =>
      (s.processes ?? []).length === 0 || s.processes?.includes(group) ? (s.machine_checks ?? []) : [],
    ),
    ...(app.machine_checks ?? []),
  ];
}

/** The machine a check tests, as its test machine's config needs it. */
export interface TestedMachine {
  /** Its config (the Machines API's MachineConfig): image, env, init. */
  config: MachineConfigInput;
  /** Its private address, given to the test as FLY_TEST_MACHINE_IP. */
  privateIp: string;
}

/** A machine check without a command: flyctl refuses it too ("missing command"). */
export class MachineCheckWithoutCommandError extends Error {
  override name = "MachineCheckWithoutCommandError";
  readonly code = "machine_check_without_command";
  constructor() {
    super("a machine_checks entry has no command: give it `command = [...]`");
  }
}

/**
 * The config of the machine that runs `check` against `tested`, as flyctl's ToTestMachineConfig
 * builds it: the check's command in the check's image (else the tested machine's), the check's
 * entrypoint (else the tested machine's; [experimental] entrypoint wins), the app's env with the
 * tested machine's over it, FLY_TEST_COMMAND=1, FLY_PROCESS_GROUP=fly_app_test_machine_command and
 * FLY_TEST_MACHINE_IP; the platform's default guest (flyctl's for a group no machine has: not the
 * tested machine's, whose GPU a test would need twice); no services, checks or restarts. Its stop signal
 * and timeout are the check's, else (when it runs the tested machine's image) the app's.
 */
export function testMachineConfig(
  app: AppConfig,
  check: AppMachineCheck,
  tested: TestedMachine,
): MachineConfigInput {
  const command = check.command ?? [];
  if (command.length === 0) throw new MachineCheckWithoutCommandError();
  const entrypoint =
    app.experimental?.entrypoint ?? check.entrypoint ?? tested.config.init?.entrypoint ?? undefined;
  const signal = check.kill_signal ?? (check.image ? undefined : app.kill_signal);
  const timeout = check.kill_timeout ?? (check.image ? undefined : app.kill_timeout);
  return {
    image: check.image || tested.config.image,
    init: { cmd: command, ...(entrypoint ? { entrypoint } : {}) },
    env: {
      ...app.env,
      ...(tested.config.env ?? {}),
      FLY_TEST_COMMAND: "1",
      FLY_PROCESS_GROUP: TEST_MACHINE_GROUP,
      ...(app.primary_region ? { PRIMARY_REGION: app.primary_region } : {}),
      FLY_TEST_MACHINE_IP: tested.privateIp,
    },
    restart: { policy: "no" },
    dns: { skip_registration: true },
    ...(signal !== undefined || timeout !== undefined
      ? {
          stop_config: {
            ...(signal !== undefined ? { signal } : {}),
            ...(timeout !== undefined
              ? { timeout: typeof timeout === "number" ? `${timeout}s` : timeout }
              : {}),
          },
        }
      : {}),
    metadata: { fly_process_group: TEST_MACHINE_GROUP },
  } as MachineConfigInput;
}
