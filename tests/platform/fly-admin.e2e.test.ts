// A Fly user's script against Hangar's gateway, through Supabase's fly-admin client (an npm package
// Hangar did not write): apps, a machine's whole life, leases, volumes and the refusals, each call
// answered with the fields fly-admin's types promise. fly-admin's secrets, IPs, regions and
// organizations go through Fly's GraphQL API, which Hangar does not serve: they are not called here.
import flyClient from "fly-admin/dist/client.js";
import type { MachineConfig, MachineEvent } from "fly-admin/dist/lib/machine.js";
import { SignalRequestSignalEnum, StateEnum } from "fly-admin/dist/lib/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helloConfig, startTestPlatform, type TestPlatform } from "./harness.js";

// fly-admin is CommonJS: Node imports its module.exports (the class is its `default`); vitest unwraps
// that `default` as a bundler would.
const Client = ("default" in flyClient ? flyClient.default : flyClient) as typeof flyClient.default;
type Fly = InstanceType<typeof Client>;

let p: TestPlatform;
let fly: Fly;
const APP = "flyadmin";

beforeAll(async () => {
  p = await startTestPlatform();
  // createClient(token) always aims at api.machines.dev; the Client it wraps takes the API's URL.
  fly = new Client(p.token, { apiUrl: p.apiUrl });
}, 120_000);

afterAll(async () => {
  await p?.close();
}, 60_000);

type Kind = "string" | "number" | "boolean" | "object" | "array";

/** Each field of `obj` has the JSON type fly-admin's response types declare for it. */
function expectFields(what: string, obj: unknown, fields: Record<string, Kind>): void {
  expect(obj, what).toBeTypeOf("object");
  const record = obj as Record<string, unknown>;
  for (const [name, kind] of Object.entries(fields)) {
    const value = record[name];
    const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
    expect(actual, `${what}.${name} = ${JSON.stringify(value)}`).toBe(kind);
  }
}

const MACHINE_FIELDS: Record<string, Kind> = {
  id: "string",
  name: "string",
  state: "string",
  region: "string",
  instance_id: "string",
  private_ip: "string",
  config: "object",
  image_ref: "object",
  created_at: "string",
  updated_at: "string",
};

const VOLUME_FIELDS: Record<string, Kind> = {
  id: "string",
  name: "string",
  state: "string",
  size_gb: "number",
  region: "string",
  zone: "string",
  encrypted: "boolean",
  created_at: "string",
  blocks: "number",
  block_size: "number",
  blocks_free: "number",
  blocks_avail: "number",
  fstype: "string",
};

type ExitEvent = Extract<MachineEvent, { type: "exit" }>;

/** `read`'s first answer that is not undefined, asked every 100 ms for up to 10 s; `last` tells what it saw. */
async function eventually<T>(read: () => Promise<T | undefined>, last: () => unknown): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`still undefined after 10 s: ${JSON.stringify(last())}`);
}

/** The hello app's config, typed as fly-admin's MachineConfig. */
const config = (extra: Record<string, unknown> = {}) => helloConfig(extra) as unknown as MachineConfig;

/** fly-admin's wait (its timeout in "30s" form, which it sends as 30). */
const waitFor = (machine_id: string, state: StateEnum, instance_id?: string) =>
  fly.Machine.waitMachine({
    app_name: APP,
    machine_id,
    state,
    timeout: "30s",
    ...(instance_id ? { instance_id } : {}),
  });

describe("fly-admin against the gateway", () => {
  it("creates, lists and shows an app", async () => {
    await fly.App.createApp({ app_name: APP, org_slug: "personal" });
    const list = await fly.App.listApps("personal");
    expectFields("listApps", list, { total_apps: "number", apps: "array" });
    const listed = list.apps.find((a) => a.name === APP);
    expectFields("listApps.apps[]", listed, { name: "string", machine_count: "number" });
    const app = await fly.App.getApp(APP);
    expectFields("getApp", app, { name: "string", status: "string", organization: "object" });
    expectFields("getApp.organization", app.organization, { name: "string", slug: "string" });
    expect(app.organization.slug).toBe("personal");
  });

  it("runs a machine's life: create, list, get, wait, update, stop, start, restart, signal, cordon", async () => {
    const m = await fly.Machine.createMachine({ app_name: APP, config: config({ env: { GREETING: "v1" } }) });
    expectFields("createMachine", m, MACHINE_FIELDS);
    expect(await waitFor(m.id, StateEnum.Started)).toMatchObject({ ok: true });

    const list = await fly.Machine.listMachines(APP);
    expect(list.map((x) => x.id)).toContain(m.id);
    expectFields("listMachines[]", list[0], MACHINE_FIELDS);
    const byRegion = await fly.Machine.listMachines({ app_name: APP, region: m.region });
    expect(byRegion.map((x) => x.id)).toContain(m.id);

    const got = await fly.Machine.getMachine({ app_name: APP, machine_id: m.id });
    expectFields("getMachine", got, MACHINE_FIELDS);
    expectFields("getMachine.image_ref", got.image_ref, { repository: "string", tag: "string" });
    expect(got.state).toBe("started");
    expect(got.config.env.GREETING).toBe("v1");

    const updated = await fly.Machine.updateMachine({
      app_name: APP,
      machine_id: m.id,
      config: config({ env: { GREETING: "v2" } }),
    });
    expectFields("updateMachine", updated, MACHINE_FIELDS);
    expect(updated.instance_id).not.toBe(m.instance_id);
    await waitFor(m.id, StateEnum.Started, updated.instance_id);
    expect((await fly.Machine.getMachine({ app_name: APP, machine_id: m.id })).config.env.GREETING).toBe(
      "v2",
    );

    const versions = await fly.Machine.listVersions({ app_name: APP, machine_id: m.id });
    expect(versions.length).toBeGreaterThanOrEqual(2);
    expectFields("listVersions[]", versions[0], { version: "string", user_config: "object" });

    expect(await fly.Machine.stopMachine({ app_name: APP, machine_id: m.id })).toMatchObject({ ok: true });
    await waitFor(m.id, StateEnum.Stopped, updated.instance_id);
    // Fly answers a start with its previous state (fly-admin types it {ok}, which Fly does not send).
    expect(await fly.Machine.startMachine({ app_name: APP, machine_id: m.id })).toMatchObject({
      previous_state: "stopped",
    });
    await waitFor(m.id, StateEnum.Started);

    // fly-admin sends restart's timeout in the body; Fly (and Hangar) read it from the query only.
    expect(
      await fly.Machine.restartMachine({ app_name: APP, machine_id: m.id, timeout: "5s" }),
    ).toMatchObject({
      ok: true,
    });
    await waitFor(m.id, StateEnum.Started);
    const ps = await fly.Machine.listProcesses({ app_name: APP, machine_id: m.id });
    expect(Array.isArray(ps)).toBe(true);
    const procs = ps as unknown as Array<Record<string, unknown>>;
    expect(procs.length).toBeGreaterThan(0);
    expectFields("listProcesses[]", procs[0], { pid: "number", command: "string", rss: "number" });
    const signal = SignalRequestSignalEnum.SIGHUP;
    expect(await fly.Machine.signalMachine({ app_name: APP, machine_id: m.id, signal })).toMatchObject({
      ok: true,
    });

    expect(await fly.Machine.cordonMachine({ app_name: APP, machine_id: m.id })).toMatchObject({ ok: true });
    expect(await fly.Machine.uncordonMachine({ app_name: APP, machine_id: m.id })).toMatchObject({
      ok: true,
    });

    // SIGHUP ends the hello app (an exit nobody asked for, 128 + 1), and the policy restarts it.
    let seen: MachineEvent[] = [];
    const hup = await eventually(
      async () => {
        const events = await fly.Machine.listEvents({ app_name: APP, machine_id: m.id });
        seen = events;
        const exit = events.find(
          (e): e is ExitEvent => e.type === "exit" && !e.request.exit_event.requested_stop,
        );
        return exit ? { events, exit } : undefined;
      },
      () => seen,
    );
    for (const event of hup.events) {
      expectFields("listEvents[]", event, {
        id: "string",
        type: "string",
        status: "string",
        source: "string",
      });
      expect(event.timestamp, JSON.stringify(event)).toBeTypeOf("number");
    }
    expect(hup.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["launch", "start", "exit", "restart"]),
    );
    // The SIGHUP's exit, with its code. (It came null twice in CI: the cordon right after the signal
    // made the agent look while the driver was still reading the exit, and record it unknown first;
    // the driver now says it is exiting then.)
    const code = hup.exit.request.exit_event.exit_code as number | null;
    expect(code).toBe(129);
    expectFields("exit_event", hup.exit.request.exit_event, {
      requested_stop: "boolean",
      restarting: "boolean",
      oom_killed: "boolean",
      exited_at: "string",
    });
    // An exit's signal, where the host knew it, is its number as Fly gives it (fly-admin's stop sent SIGTERM, 15).
    const exits = hup.events
      .filter((e): e is ExitEvent => e.type === "exit")
      .map((e) => e.request.exit_event);
    for (const exit of exits) expect([1, 2, 15, undefined], JSON.stringify(exit)).toContain(exit.signal);
    expect(
      exits.some((e) => e.signal === 1 || e.signal === 15),
      JSON.stringify(exits),
    ).toBe(true);
    await waitFor(m.id, StateEnum.Started);

    expect(await fly.Machine.deleteMachine({ app_name: APP, machine_id: m.id, force: true })).toMatchObject({
      ok: true,
    });
    await waitFor(m.id, StateEnum.Destroyed);
    expect((await fly.Machine.listMachines(APP)).map((x) => x.id)).not.toContain(m.id);
    const withDeleted = await fly.Machine.listMachines({ app_name: APP, include_deleted: "" });
    expect(withDeleted.find((x) => x.id === m.id)?.state).toBe("destroyed");
  });

  it("takes a lease that holds off other writers until it expires", async () => {
    const m = await fly.Machine.createMachine({ app_name: APP, config: config() });
    await waitFor(m.id, StateEnum.Started);
    const lease = await fly.Machine.acquireLease({
      app_name: APP,
      machine_id: m.id,
      ttl: 2,
      description: "fly-admin",
    });
    expect(lease.status).toBe("success");
    expectFields("acquireLease.data", lease.data, {
      nonce: "string",
      expires_at: "number",
      owner: "string",
      description: "string",
    });
    const held = await fly.Machine.getLease({ app_name: APP, machine_id: m.id });
    expect(held.data.nonce).toBe(lease.data.nonce);
    // fly-admin has no way to send the lease's nonce: until the lease expires, a write is refused.
    await expect(fly.Machine.stopMachine({ app_name: APP, machine_id: m.id })).rejects.toThrow(/^409: /);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await fly.Machine.stopMachine({ app_name: APP, machine_id: m.id });
    await waitFor(m.id, StateEnum.Stopped);
    await fly.Machine.deleteMachine({ app_name: APP, machine_id: m.id });
  });

  it("creates, lists, shows, extends and deletes a volume", async () => {
    const vol = await fly.Volume.createVolume({ app_name: APP, name: "data", region: "local", size_gb: 1 });
    expectFields("createVolume", vol, VOLUME_FIELDS);
    expect(vol.size_gb).toBe(1);
    const list = await fly.Volume.listVolumes(APP);
    expect(list.map((v) => v.id)).toContain(vol.id);
    expectFields("listVolumes[]", list[0], VOLUME_FIELDS);
    expectFields(
      "getVolume",
      await fly.Volume.getVolume({ app_name: APP, volume_id: vol.id }),
      VOLUME_FIELDS,
    );
    const extended = await fly.Volume.extendVolume({ app_name: APP, volume_id: vol.id, size_gb: 2 });
    expectFields("extendVolume", extended, { needs_restart: "boolean", volume: "object" });
    expectFields("extendVolume.volume", extended.volume, VOLUME_FIELDS);
    expect(extended.volume.size_gb).toBe(2);
    const snapshots = await fly.Volume.listSnapshots({ app_name: APP, volume_id: vol.id });
    expect(Array.isArray(snapshots)).toBe(true);
    const deleted = await fly.Volume.deleteVolume({ app_name: APP, volume_id: vol.id });
    expectFields("deleteVolume", deleted, { id: "string", state: "string" });
    expect((await fly.Volume.listVolumes(APP)).map((v) => v.id)).not.toContain(vol.id);
  });

  it("surfaces the refusals as fly-admin throws them: 401 for a wrong token, 404 for a missing machine", async () => {
    const stranger = new Client("not-a-token", { apiUrl: p.apiUrl });
    await expect(stranger.Machine.listMachines(APP)).rejects.toThrow(/^401: /);
    await expect(fly.Machine.getMachine({ app_name: APP, machine_id: "0123456789abcd" })).rejects.toThrow(
      /^404: /,
    );
    await expect(fly.App.getApp("no-such-app")).rejects.toThrow(/^404: /);
  });

  it("deletes the app", async () => {
    await fly.App.deleteApp(APP);
    await expect(fly.App.getApp(APP)).rejects.toThrow(/^404: /);
  });
});
