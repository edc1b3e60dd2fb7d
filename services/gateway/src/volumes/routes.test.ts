import { randomBytes } from "node:crypto";
import { mintToken } from "@hangar/auth";
import { createLogger } from "@hangar/telemetry";
import { beforeEach, describe, expect, it } from "vitest";
import { createApi } from "../http/api.js";
import type { TokenAuth } from "../http/auth.js";
import { ApiError } from "../http/errors.js";
import type {
  CreateVolumeRequest,
  ExtendVolumeView,
  UpdateVolumeRequest,
  VolumeSnapshotView,
  VolumesBackend,
  VolumeView,
} from "./api.js";

const KEY = new Uint8Array(randomBytes(32));
const AUTH: TokenAuth = {
  key: KEY,
  directory: {
    orgOf: (app) => ({ web: "acme", shop: "rival" })[app],
    exists: (org) => org === "acme" || org === "rival",
    limitsOf: () => ({}),
  },
  isRevoked: () => false,
};
const ACME = mintToken(KEY, { id: "tok_acme", kind: "org", org: "acme" });
const ACME_READ = mintToken(KEY, { id: "tok_read", kind: "readonly", org: "acme" });

const VOL = "vol_0123456789abcdef";

function volume(over: Partial<VolumeView> = {}): VolumeView {
  return {
    id: VOL,
    name: "data",
    state: "created",
    size_gb: 1,
    region: "local",
    zone: "host-a",
    encrypted: false,
    fstype: "ext4",
    created_at: "2026-12-05T07:00:00.000Z",
    snapshot_retention: 5,
    auto_backup_enabled: true,
    attached_machine_id: null,
    attached_alloc_id: null,
    block_size: 4096,
    blocks: 0,
    blocks_free: 0,
    blocks_avail: 0,
    ...over,
  };
}

/** The routes' test double: volumes in a map, and the arguments of every call. */
class MemoryVolumes implements VolumesBackend {
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly volumes = new Map<string, VolumeView>();

  private found(app: string, id: string): VolumeView {
    const v = this.volumes.get(`${app}/${id}`);
    if (!v) throw ApiError.of("not_found", `volume ${id} not found in app ${app}`);
    return v;
  }

  async listVolumes(app: string): Promise<VolumeView[]> {
    this.calls.push({ method: "listVolumes", args: [app] });
    return [...this.volumes.entries()].filter(([k]) => k.startsWith(`${app}/`)).map(([, v]) => v);
  }
  async createVolume(app: string, org: string, input: CreateVolumeRequest): Promise<VolumeView> {
    this.calls.push({ method: "createVolume", args: [app, org, input] });
    const v = volume({ name: input.name, size_gb: input.size_gb ?? 1 });
    this.volumes.set(`${app}/${v.id}`, v);
    return v;
  }
  async getVolume(app: string, id: string): Promise<VolumeView> {
    return this.found(app, id);
  }
  async updateVolume(app: string, id: string, input: UpdateVolumeRequest): Promise<VolumeView> {
    this.calls.push({ method: "updateVolume", args: [app, id, input] });
    return { ...this.found(app, id), snapshot_retention: input.snapshot_retention ?? 5 };
  }
  async extendVolume(app: string, id: string, sizeGb: number): Promise<ExtendVolumeView> {
    this.calls.push({ method: "extendVolume", args: [app, id, sizeGb] });
    return { needs_restart: false, volume: { ...this.found(app, id), size_gb: sizeGb } };
  }
  async deleteVolume(app: string, id: string): Promise<VolumeView> {
    const v = this.found(app, id);
    if (v.attached_machine_id) {
      throw ApiError.of("conflict", `volume ${id} is attached to machine ${v.attached_machine_id}`);
    }
    this.volumes.delete(`${app}/${id}`);
    return { ...v, state: "destroyed" };
  }
  async listSnapshots(app: string, id: string): Promise<VolumeSnapshotView[]> {
    this.found(app, id);
    return [];
  }
  async createSnapshot(app: string, id: string): Promise<VolumeSnapshotView> {
    this.calls.push({ method: "createSnapshot", args: [app, id] });
    this.found(app, id);
    return {
      id: "vs_1",
      size: 1,
      digest: "sha256:00",
      created_at: "2026-12-05T07:00:00.000Z",
      status: "created",
      retention_days: 5,
      type: "on_demand",
    };
  }
}

let backend: MemoryVolumes;
let api: ReturnType<typeof createApi>;

beforeEach(() => {
  backend = new MemoryVolumes();
  api = createApi({
    backend: {} as never,
    auth: AUTH,
    volumes: backend,
    logger: createLogger("test", { level: "silent" }),
  });
  backend.volumes.set(`web/${VOL}`, volume());
  backend.volumes.set(`shop/${VOL}`, volume());
});

async function call(method: string, path: string, body?: unknown, token = ACME) {
  const res = await api.request(path, {
    method,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("volume routes", () => {
  it("creates a volume of the app's org with Fly's request, extra flyctl fields ignored", async () => {
    const res = await call("POST", "/v1/apps/web/volumes", {
      name: "data",
      region: "local",
      size_gb: 3,
      encrypted: true,
      require_unique_zone: true,
      compute: { cpus: 1 },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: VOL, name: "data", size_gb: 3, encrypted: false });
    expect(backend.calls[0]?.args.slice(0, 2)).toEqual(["web", "acme"]);
  });

  it.each([
    [{ region: "local" }, /name: required/],
    [{ name: "Data-1" }, /name: expected lowercase letters, digits and underscores/],
    [{ name: "data", size_gb: 0 }, /size_gb/],
    [{ name: "data", size_gb: 1.5 }, /size_gb/],
    [{ name: "data", size_gb: 501 }, /size_gb/],
    [{ name: "data", fstype: "xfs" }, /fstype/],
    [{ name: "data", snapshot_retention: 0 }, /snapshot_retention/],
    [{ name: "data", source_volume_id: "x.y" }, /source_volume_id/],
    [{ name: "data", source_volume_id: "vol_short" }, /source_volume_id: expected a volume id/],
    [{ name: "data", snapshot_id: "vs_1" }, /snapshot_id: expected a snapshot id/],
    [{ name: "data", snapshot_id: "vs_0123456789ABCDEF" }, /snapshot_id/],
    [{ name: "data", snapshot_id: `vs_${"0".repeat(17)}` }, /snapshot_id/],
  ])("refuses a create body %j with 400 naming the field", async (body, message) => {
    const res = await call("POST", "/v1/apps/web/volumes", body);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ status: "invalid_argument" });
    expect(res.json.error).toMatch(message);
    expect(backend.calls).toEqual([]);
  });

  it("refuses malformed JSON and a malformed volume id with 400, never 500", async () => {
    expect((await call("POST", "/v1/apps/web/volumes", "{nope")).status).toBe(400);
    const bad = await call("GET", "/v1/apps/web/volumes/vol_UPPER.x");
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/volume_id/);
    // Only the domain's shape (isVolumeId): vol_ and 16 lowercase letters or digits.
    for (const id of ["vol_short", `vol_${"a".repeat(17)}`, "vol_ABCDEF0123456789", "nope"]) {
      const res = await call("GET", `/v1/apps/web/volumes/${id}`);
      expect(res.status, id).toBe(400);
      expect(res.json.error).toMatch(/volume_id: expected a volume id such as vol_/);
    }
    expect(backend.calls).toEqual([]);
    expect((await call("PUT", `/v1/apps/web/volumes/${VOL}/extend`, { size_gb: "2" })).status).toBe(400);
  });

  it("lists, gets, updates, extends, snapshots and deletes", async () => {
    expect((await call("GET", "/v1/apps/web/volumes")).json).toEqual([volume()]);
    expect((await call("GET", `/v1/apps/web/volumes/${VOL}`)).json).toMatchObject({ id: VOL });
    const updated = await call("POST", `/v1/apps/web/volumes/${VOL}`, { snapshot_retention: 9 });
    expect(updated.json).toMatchObject({ snapshot_retention: 9 });
    const extended = await call("PUT", `/v1/apps/web/volumes/${VOL}/extend`, { size_gb: 2 });
    expect(extended.json).toMatchObject({ needs_restart: false, volume: { size_gb: 2 } });
    expect((await call("POST", `/v1/apps/web/volumes/${VOL}/snapshots`)).json).toMatchObject({ id: "vs_1" });
    expect((await call("GET", `/v1/apps/web/volumes/${VOL}/snapshots`)).json).toEqual([]);
    expect((await call("DELETE", `/v1/apps/web/volumes/${VOL}`)).json).toMatchObject({ state: "destroyed" });
    expect((await call("GET", `/v1/apps/web/volumes/${VOL}`)).status).toBe(404);
  });

  it("answers another org's volume as not found, before asking the backend", async () => {
    for (const [method, path] of [
      ["GET", `/v1/apps/shop/volumes/${VOL}`],
      ["DELETE", `/v1/apps/shop/volumes/${VOL}`],
      ["GET", "/v1/apps/shop/volumes"],
    ] as const) {
      const res = await call(method, path);
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ error: "app shop not found", status: "not_found" });
    }
    expect(backend.volumes.has(`shop/${VOL}`)).toBe(true);
  });

  it("lets a read-only token read and refuses its changes with 403", async () => {
    expect((await call("GET", "/v1/apps/web/volumes", undefined, ACME_READ)).status).toBe(200);
    const res = await call("DELETE", `/v1/apps/web/volumes/${VOL}`, undefined, ACME_READ);
    expect(res.status).toBe(403);
    expect(backend.volumes.has(`web/${VOL}`)).toBe(true);
  });

  it("passes the backend's refusal of an attached volume on as Fly's error body", async () => {
    backend.volumes.set(`web/${VOL}`, volume({ attached_machine_id: "m1" }));
    const res = await call("DELETE", `/v1/apps/web/volumes/${VOL}`);
    expect(res.status).toBe(409);
    expect(res.json).toEqual({
      error: `volume ${VOL} is attached to machine m1`,
      status: "conflict",
    });
  });
});
