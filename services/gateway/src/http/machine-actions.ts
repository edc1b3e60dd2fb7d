import { durationToMs, SignalRequestSchema, StopRequestSchema } from "@hangar/config";
import { Hono } from "hono";
import type { MachinesBackend } from "./backend.js";
import { readBody } from "./body.js";
import type { ApiEnv } from "./context.js";
import { MACHINE_PATH, machineTarget } from "./params.js";
import { restartOptions, waitOptions } from "./query.js";

const OK = { ok: true } as const;

/** Lifecycle routes of one machine: start, stop, restart, signal, suspend, cordon, uncordon, wait, events. */
export function machineActionRoutes(backend: MachinesBackend): Hono<ApiEnv> {
  return new Hono<ApiEnv>()
    .post(`${MACHINE_PATH}/start`, async (c) => {
      return c.json(await backend.startMachine(...machineTarget(c, "write")));
    })
    .post(`${MACHINE_PATH}/stop`, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      const body = await readBody(c, StopRequestSchema, { optional: true });
      const timeoutMs = body.timeout == null ? undefined : durationToMs(body.timeout);
      await backend.stopMachine(app, id, { signal: body.signal ?? undefined, timeoutMs }, ctx);
      return c.json(OK);
    })
    .post(`${MACHINE_PATH}/restart`, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      await backend.restartMachine(app, id, restartOptions(c), ctx);
      return c.json(OK);
    })
    .post(`${MACHINE_PATH}/signal`, async (c) => {
      const [app, id, ctx] = machineTarget(c, "write");
      const { signal } = await readBody(c, SignalRequestSchema);
      await backend.signalMachine(app, id, signal, ctx);
      return c.json(OK);
    })
    .post(`${MACHINE_PATH}/suspend`, async (c) => {
      await backend.suspendMachine(...machineTarget(c, "write"));
      return c.json(OK);
    })
    .post(`${MACHINE_PATH}/cordon`, async (c) => {
      await backend.cordonMachine(...machineTarget(c, "write"));
      return c.json(OK);
    })
    .post(`${MACHINE_PATH}/uncordon`, async (c) => {
      await backend.uncordonMachine(...machineTarget(c, "write"));
      return c.json(OK);
    })
    .get(`${MACHINE_PATH}/wait`, async (c) => {
      const [app, id, ctx] = machineTarget(c, "read");
      const state = await backend.waitMachine(app, id, waitOptions(c), ctx);
      return c.json({ ok: true, state });
    })
    .get(`${MACHINE_PATH}/events`, async (c) => {
      return c.json(await backend.listMachineEvents(...machineTarget(c, "read")));
    });
}
