// Fly's Volumes API end to end, through the gateway of a whole platform (volume service, placement,
// host agents making real ext4 images on loop-capable hosts): create as flyctl sends it, list, get,
// update, extend, snapshots, delete; and issue 15's acceptance 4: a second machine asking for an
// attached volume (409), destroying an attached volume, and a machine asking for a volume in another
// region each get a clear error, and nothing is created.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mintToken } from "@hangar/auth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCliIn } from "../../cli/test/run-cli.js";
import { helloConfig, startTestPlatform, type TestPlatform } from "../platform/harness.js";
import { volumeFiles } from "./volume-app.js";

let p: TestPlatform;
const APP = "vols";

interface Volume {
  id: string;
  name: string;
  state: string;
  size_gb: number;
  region: string;
  zone: string;
  attached_machine_id: string | null;
  snapshot_retention: number;
  auto_backup_enabled: boolean;
  block_size: number;
  blocks: number;
  blocks_free: number;
  blocks_avail: number;
}

// The properties of the spec's Volume, and auto_backup_enabled as Fly's current API answers it.
const VOLUME_FIELDS = [
  "attached_alloc_id",
  "attached_machine_id",
  "auto_backup_enabled",
  "block_size",
  "blocks",
  "blocks_avail",
  "blocks_free",
  "created_at",
  "encrypted",
  "fstype",
  "id",
  "name",
  "region",
  "size_gb",
  "snapshot_retention",
  "state",
  "zone",
];

beforeAll(async () => {
  // One host, in region "local": a machine asking for "ams" is refused for its volume's region before
  // placement is asked anything, whichever hosts "ams" has.
  p = await startTestPlatform();
  // hangar finds the platform as after `npm start`: through $HANGAR_HOME/local.json.
  writeFileSync(join(p.home, "local.json"), JSON.stringify({ api_url: p.apiUrl, token: p.token }));
  await p.api.ok("POST", "/apps", { app_name: APP, org_slug: "personal" });
  await p.api.ok("POST", "/orgs", { slug: "rival" });
}, 120_000);

afterAll(async () => {
  await p?.close();
}, 60_000);

const machineIds = async () =>
  (await p.api.ok<{ id: string }[]>("GET", `/apps/${APP}/machines`)).map((m) => m.id).sort();

describe("the Volumes API", () => {
  let vol: Volume;

  it("creates a volume from flyctl's request, with the spec's fields and its host's figures", async () => {
    // As flyctl sends it: a FlyV1 token, encryption asked for (Hangar's volumes are not encrypted,
    // and the answer says so), compute and require_unique_zone.
    const res = await fetch(`${p.apiUrl}/v1/apps/${APP}/volumes`, {
      method: "POST",
      headers: { authorization: `FlyV1 ${p.token}`, "content-type": "application/json" },
      body: JSON.stringify({
        name: "data",
        region: "local",
        size_gb: 1,
        encrypted: true,
        require_unique_zone: false,
        snapshot_retention: 5,
        compute: { cpu_kind: "shared", cpus: 1, memory_mb: 256 },
      }),
    });
    const body = (await res.json()) as Volume & Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(Object.keys(body).sort()).toEqual(VOLUME_FIELDS);
    expect(body).toMatchObject({
      name: "data",
      state: "created",
      size_gb: 1,
      region: "local",
      zone: p.hostIds[0],
      encrypted: false,
      fstype: "ext4",
      snapshot_retention: 5,
      attached_machine_id: null,
    });
    expect(body.id).toMatch(/^vol_[0-9a-z]{16}$/);
    // statfs of the fresh ext4 filesystem, through its host.
    expect(body.block_size).toBeGreaterThan(0);
    expect(body.blocks_free).toBeGreaterThan(0);
    expect(body.blocks_free).toBeLessThanOrEqual(body.blocks);
    vol = body;
  });

  it("lists and gets it; updates its retention and scheduled snapshots", async () => {
    expect((await p.api.ok<Volume[]>("GET", `/apps/${APP}/volumes`)).map((v) => v.id)).toEqual([vol.id]);
    expect(await p.api.ok<Volume>("GET", `/apps/${APP}/volumes/${vol.id}`)).toMatchObject({ id: vol.id });
    const updated = await p.api.ok<Volume>("POST", `/apps/${APP}/volumes/${vol.id}`, {
      snapshot_retention: 7,
      auto_backup_enabled: false,
    });
    expect(updated).toMatchObject({ snapshot_retention: 7, auto_backup_enabled: false });
  });

  it("takes a snapshot and lists it", async () => {
    const snap = await p.api.ok<Record<string, unknown>>("POST", `/apps/${APP}/volumes/${vol.id}/snapshots`);
    // A 1 GB volume (before the extend below): the snapshot reads, hashes and compresses all of it.
    expect(snap).toMatchObject({ status: "created", type: "on_demand", retention_days: 7 });
    expect(snap.id).toMatch(/^vs_/);
    expect(snap.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const list = await p.api.ok<{ id: string }[]>("GET", `/apps/${APP}/volumes/${vol.id}/snapshots`);
    expect(list.map((s) => s.id)).toEqual([snap.id]);
  });

  it("extends it, and refuses a size that does not grow it", async () => {
    const res = await p.api.ok<{ needs_restart: boolean; volume: Volume }>(
      "PUT",
      `/apps/${APP}/volumes/${vol.id}/extend`,
      { size_gb: 2 },
    );
    expect(res.needs_restart).toBe(false);
    expect(res.volume.size_gb).toBe(2);
    const same = await p.api.call("PUT", `/apps/${APP}/volumes/${vol.id}/extend`, { size_gb: 2 });
    expect(same.status).toBe(400);
    expect(same.body).toMatchObject({
      status: "invalid_argument",
      error: expect.stringMatching(/only grows/),
    });
  });

  it("refuses bad bodies with 400 and another org's token with 404, and creates nothing", async () => {
    for (const body of [
      { name: "Bad-Name" },
      { name: "data", size_gb: 0 },
      { name: "data", fstype: "xfs" },
    ]) {
      const res = await p.api.call("POST", `/apps/${APP}/volumes`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({ status: "invalid_argument" });
    }
    const rival = mintToken(p.tokenKey, { id: "tok_rival", kind: "org", org: "rival" });
    const foreign = await p.api.call("GET", `/apps/${APP}/volumes/${vol.id}`, undefined, { token: rival });
    expect(foreign).toEqual({ status: 404, body: { error: `app ${APP} not found`, status: "not_found" } });
    expect((await p.api.ok<Volume[]>("GET", `/apps/${APP}/volumes`)).length).toBe(1);
  });

  describe("another org's, another app's and a read-only token's requests on a real volume", () => {
    const OTHER_APP = "vols-other";
    const RIVAL_APP = "vols-rival";
    let rival = "";
    let readOnly = "";

    /** What a refused request must leave as it was: the volume, its snapshots, every volume and disk. */
    async function everything() {
      const v = await p.api.ok<Volume>("GET", `/apps/${APP}/volumes/${vol.id}`);
      return {
        volume: {
          state: v.state,
          size_gb: v.size_gb,
          snapshot_retention: v.snapshot_retention,
          auto_backup_enabled: v.auto_backup_enabled,
          attached_machine_id: v.attached_machine_id,
        },
        snapshots: (await p.api.ok<{ id: string }[]>("GET", `/apps/${APP}/volumes/${vol.id}/snapshots`)).map(
          (x) => x.id,
        ),
        volumes: await Promise.all(
          [APP, OTHER_APP, RIVAL_APP].map(async (app) =>
            (await p.api.ok<Volume[]>("GET", `/apps/${app}/volumes`)).map((x) => x.id),
          ),
        ),
        machines: await Promise.all(
          [APP, OTHER_APP, RIVAL_APP].map(async (app) =>
            (await p.api.ok<{ id: string }[]>("GET", `/apps/${app}/machines`)).map((m) => m.id),
          ),
        ),
        disks: (await volumeFiles(p)).sort(),
      };
    }

    beforeAll(async () => {
      await p.api.ok("POST", "/apps", { app_name: OTHER_APP, org_slug: "personal" });
      await p.api.ok("POST", "/apps", { app_name: RIVAL_APP, org_slug: "rival" });
      rival = mintToken(p.tokenKey, { id: "tok_rival_vols", kind: "org", org: "rival" });
      readOnly = (await p.api.ok<{ token: string }>("POST", "/tokens", { kind: "readonly", org: "personal" }))
        .token;
    });

    it("another org's token gets 404 on update, extend, snapshot and delete, and nothing changes", async () => {
      const before = await everything();
      const path = `/apps/${APP}/volumes/${vol.id}`;
      for (const [method, url, body] of [
        ["POST", path, { snapshot_retention: 10, auto_backup_enabled: true }],
        ["PUT", `${path}/extend`, { size_gb: 3 }],
        ["POST", `${path}/snapshots`, undefined],
        ["DELETE", path, undefined],
      ] as const) {
        const res = await p.api.call(method, url, body, { token: rival });
        expect(res, `${method} ${url}`).toEqual({
          status: 404,
          body: { error: `app ${APP} not found`, status: "not_found" },
        });
      }
      expect(await everything()).toEqual(before);
    });

    it("the same org's other app with this app's volume id gets 404, and nothing changes", async () => {
      const before = await everything();
      const path = `/apps/${OTHER_APP}/volumes/${vol.id}`;
      for (const [method, url, body] of [
        ["GET", path, undefined],
        ["POST", path, { snapshot_retention: 10 }],
        ["PUT", `${path}/extend`, { size_gb: 3 }],
        ["GET", `${path}/snapshots`, undefined],
        ["POST", `${path}/snapshots`, undefined],
        ["DELETE", path, undefined],
      ] as const) {
        const res = await p.api.call(method, url, body);
        expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBe(404);
        expect(res.body).toMatchObject({ status: "not_found" });
      }
      expect(await everything()).toEqual(before);
    });

    it("a create from another app's or org's snapshot or volume is 404, and no volume or disk is made", async () => {
      const [snap] = await p.api.ok<{ id: string }[]>("GET", `/apps/${APP}/volumes/${vol.id}/snapshots`);
      expect(snap).toBeDefined();
      const before = await everything();
      for (const [app, token] of [
        [OTHER_APP, p.token],
        [RIVAL_APP, rival],
      ] as const) {
        for (const source of [{ snapshot_id: snap?.id }, { source_volume_id: vol.id }]) {
          const res = await p.api.call(
            "POST",
            `/apps/${app}/volumes`,
            { name: "stolen", ...source },
            { token },
          );
          expect(res.status, `${app} ${JSON.stringify(source)}: ${JSON.stringify(res.body)}`).toBe(404);
          expect(res.body).toMatchObject({ status: "not_found" });
        }
      }
      expect(await everything()).toEqual(before);
    });

    it("a machine of another org's app mounting the volume is refused, and nothing is created or attached", async () => {
      const before = await everything();
      const res = await p.api.call(
        "POST",
        `/apps/${RIVAL_APP}/machines`,
        { config: helloConfig({ mounts: [{ volume: vol.id, path: "/data" }] }), skip_launch: true },
        { token: rival },
      );
      expect(res.status, JSON.stringify(res.body)).toBe(404);
      expect(res.body).toMatchObject({ status: "not_found" });
      expect(await everything()).toEqual(before);
    });

    it("a read-only token may read the volume but not update, extend, snapshot or delete it", async () => {
      const before = await everything();
      const path = `/apps/${APP}/volumes/${vol.id}`;
      expect((await p.api.call("GET", path, undefined, { token: readOnly })).status).toBe(200);
      for (const [method, url, body] of [
        ["POST", path, { snapshot_retention: 10 }],
        ["PUT", `${path}/extend`, { size_gb: 3 }],
        ["POST", `${path}/snapshots`, undefined],
        ["DELETE", path, undefined],
        ["POST", `/apps/${APP}/volumes`, { name: "ro" }],
      ] as const) {
        const res = await p.api.call(method, url, body, { token: readOnly });
        expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBe(403);
        expect(res.body).toMatchObject({ status: "permission_denied" });
      }
      expect(await everything()).toEqual(before);
    });

    it("bad update and extend bodies and ids not of the domain's shape are 400 at the route, and nothing changes", async () => {
      const before = await everything();
      const path = `/apps/${APP}/volumes/${vol.id}`;
      for (const body of [
        { snapshot_retention: 0 },
        { snapshot_retention: 61 },
        { snapshot_retention: "7" },
        { snapshot_retention: 2.5 },
        { auto_backup_enabled: "yes" },
      ]) {
        const res = await p.api.call("POST", path, body);
        expect(res.status, `update ${JSON.stringify(body)}`).toBe(400);
        expect(res.body).toMatchObject({ status: "invalid_argument" });
      }
      for (const body of [{ size_gb: 501 }, { size_gb: "3" }, { size_gb: 2.5 }, {}, { size_gb: null }]) {
        const res = await p.api.call("PUT", `${path}/extend`, body);
        expect(res.status, `extend ${JSON.stringify(body)}`).toBe(400);
        expect(res.body).toMatchObject({ status: "invalid_argument" });
      }
      for (const id of ["vol_short", `vol_${"a".repeat(17)}`, "vol_ABCDEF0123456789", "nope"]) {
        const res = await p.api.call("GET", `/apps/${APP}/volumes/${id}`);
        expect(res.status, id).toBe(400);
        expect(res.body).toMatchObject({ status: "invalid_argument" });
      }
      for (const snapshot_id of ["vs_short", "vs_0123456789ABCDEF", `vs_${"0".repeat(17)}`]) {
        const res = await p.api.call("POST", `/apps/${APP}/volumes`, { name: "bad_source", snapshot_id });
        expect(res.status, snapshot_id).toBe(400);
        expect(res.body).toMatchObject({ status: "invalid_argument" });
      }
      expect(await everything()).toEqual(before);
    });
  });

  describe("machines mounting it (acceptance 4)", () => {
    let machineId: string;

    it("a machine mounting it by id is created with the volume attached", async () => {
      const m = await p.api.ok<{ id: string; region: string; config: { mounts: unknown[] } }>(
        "POST",
        `/apps/${APP}/machines`,
        { config: helloConfig({ mounts: [{ volume: vol.id, path: "/data" }] }), skip_launch: true },
      );
      expect(m.region).toBe("local");
      expect(m.config.mounts).toEqual([{ volume: vol.id, name: "data", path: "/data" }]);
      machineId = m.id;
      const v = await p.api.ok<Volume>("GET", `/apps/${APP}/volumes/${vol.id}`);
      expect(v.attached_machine_id).toBe(machineId);
    });

    it("a second machine asking for the attached volume gets 409, and no machine is created", async () => {
      for (const mount of [{ volume: vol.id }, { name: "data" }]) {
        const res = await p.api.call("POST", `/apps/${APP}/machines`, {
          config: helloConfig({ mounts: [{ ...mount, path: "/data" }] }),
        });
        if ("volume" in mount) {
          expect(res).toEqual({
            status: 409,
            body: { error: `volume ${vol.id} is attached to machine ${machineId}`, status: "conflict" },
          });
        } else {
          // By name, only an unattached volume will do: there is none.
          expect(res.status).toBe(404);
          expect(res.body).toMatchObject({ error: expect.stringMatching(/no unattached volume named data/) });
        }
      }
      expect(await machineIds()).toEqual([machineId]);
    });

    it("destroying the attached volume is refused, and the volume is still there", async () => {
      const res = await p.api.call("DELETE", `/apps/${APP}/volumes/${vol.id}`);
      expect(res).toEqual({
        status: 409,
        body: {
          error: `volume ${vol.id} is attached to machine ${machineId}; destroy the machine first`,
          status: "conflict",
        },
      });
      expect(await p.api.ok<Volume>("GET", `/apps/${APP}/volumes/${vol.id}`)).toMatchObject({
        state: "created",
        attached_machine_id: machineId,
      });
    });

    it("hangar volumes shows it attached and prints the same refusal to destroy it", async () => {
      const show = await runCliIn(p.home, ["volumes", "show", vol.id, "-a", APP, "--json"]);
      expect(show.code, show.stderr).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({ id: vol.id, attached_machine_id: machineId });
      const destroy = await runCliIn(p.home, ["volumes", "destroy", vol.id, "-a", APP, "--yes"]);
      expect(destroy.code).toBe(1);
      expect(destroy.stderr).toBe(
        `Error: volume ${vol.id} is attached to machine ${machineId}; destroy the machine first\n`,
      );
    });

    it("a machine in another region asking for it gets 400 naming both regions, and nothing is created", async () => {
      const free = await p.api.ok<Volume>("POST", `/apps/${APP}/volumes`, { name: "spare", region: "local" });
      const res = await p.api.call("POST", `/apps/${APP}/machines`, {
        region: "ams",
        config: helloConfig({ mounts: [{ volume: free.id, path: "/data" }] }),
      });
      expect(res).toEqual({
        status: 400,
        body: {
          error: `volume ${free.id} is in region local; the machine is in ams`,
          status: "invalid_argument",
        },
      });
      expect(await machineIds()).toEqual([machineId]);
      expect(
        (await p.api.ok<Volume>("GET", `/apps/${APP}/volumes/${free.id}`)).attached_machine_id,
      ).toBeNull();
      expect((await p.api.ok<Volume>("DELETE", `/apps/${APP}/volumes/${free.id}`)).state).toBe("destroyed");
    });

    it("once the machine is destroyed, the volume is detached and may be deleted", async () => {
      await p.api.ok("DELETE", `/apps/${APP}/machines/${machineId}?force=true`);
      const deadline = Date.now() + 15_000;
      let v = await p.api.ok<Volume>("GET", `/apps/${APP}/volumes/${vol.id}`);
      while (v.attached_machine_id !== null && Date.now() < deadline) {
        await sleep(100);
        v = await p.api.ok<Volume>("GET", `/apps/${APP}/volumes/${vol.id}`);
      }
      expect(v.attached_machine_id).toBeNull();
      const deleted = await p.api.ok<Volume>("DELETE", `/apps/${APP}/volumes/${vol.id}`);
      expect(deleted).toMatchObject({ id: vol.id, state: "destroyed" });
      expect((await p.api.call("GET", `/apps/${APP}/volumes/${vol.id}`)).status).toBe(404);
      expect(await p.api.ok<Volume[]>("GET", `/apps/${APP}/volumes`)).toEqual([]);
    });
  });
});
