import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createContext, type TerminalInput } from "../src/context.js";
import { runCli } from "../src/program.js";
import type { Volume } from "../src/types.js";
import { FakeApi } from "./fake-api.js";
import { runCliIn } from "./run-cli.js";

// `hangar volumes` in this process against a stand-in for the HTTP API: the requests each command
// sends and what it prints. tests/volumes/api.e2e.test.ts runs the real API.

const TOKEN = "test-token";
const ID = "vol_0123456789abcdef";
const SNAP = "vs_0123456789abcdef";
let api: FakeApi;
let home: string;

function volume(over: Partial<Volume> = {}): Volume {
  return {
    id: ID,
    name: "data",
    state: "created",
    size_gb: 1,
    region: "local",
    zone: "host-a",
    encrypted: false,
    fstype: "ext4",
    created_at: "2026-12-05T07:00:00Z",
    snapshot_retention: 5,
    auto_backup_enabled: true,
    attached_machine_id: null,
    attached_alloc_id: null,
    block_size: 4096,
    blocks: 262144,
    blocks_free: 131072,
    blocks_avail: 131072,
    ...over,
  };
}

const hangar = (args: string[]) => runCliIn(home, args);

/** Runs the CLI with `answer` typed on a terminal. */
async function hangarOnTty(args: string[], answer: string) {
  const res = { code: 0, stdout: "", stderr: "" };
  const stdin = Object.assign(Readable.from([answer]), { isTTY: true }) as TerminalInput;
  const ctx = createContext({
    env: { HANGAR_HOME: home },
    cwd: home,
    stdin,
    out: (t) => {
      res.stdout += t;
    },
    err: (t) => {
      res.stderr += t;
    },
  });
  res.code = await runCli(args, ctx);
  return res;
}

beforeAll(async () => {
  api = await FakeApi.start(TOKEN);
  home = await mkdtemp(join(tmpdir(), "hangar-cli-volumes-"));
  await writeFile(join(home, "local.json"), JSON.stringify({ api_url: api.url, token: TOKEN }));
});

afterAll(async () => {
  await api?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

describe("hangar volumes", () => {
  it("create sends Fly's request, --count times, and prints each volume", async () => {
    api.route("POST", "/apps/web/volumes", (_req, n) => ({
      status: 200,
      body: volume({ id: `vol_000000000000000${n}`, size_gb: 3 }),
    }));
    const res = await hangar([
      "volumes",
      "create",
      "data",
      "-a",
      "web",
      "--size",
      "3",
      "-r",
      "local",
      "-n",
      "2",
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      "Created volume vol_0000000000000000 (data, 3GB) in region local on host host-a\n" +
        "Created volume vol_0000000000000001 (data, 3GB) in region local on host host-a\n",
    );
    expect(api.seen("POST", "/apps/web/volumes").map((r) => r.body)).toEqual([
      { name: "data", size_gb: 3, region: "local" },
      { name: "data", size_gb: 3, region: "local" },
    ]);
  });

  it("create --json prints the volume alone on stdout, progress on stderr", async () => {
    api.reply("POST", "/apps/json/volumes", volume());
    const res = await hangar(["volumes", "create", "data", "-a", "json", "--snapshot-id", SNAP, "--json"]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(volume());
    expect(res.stderr).toMatch(/^Created volume/);
    expect(api.seen("POST", "/apps/json/volumes")[0]?.body).toEqual({
      name: "data",
      snapshot_id: SNAP,
    });
  });

  it("refuses a bad name or id with a usage error, before calling the API", async () => {
    const before = api.requests.length;
    const bad = await hangar(["volumes", "create", "My-Data", "-a", "web"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/lowercase letters, digits and underscores/);
    expect((await hangar(["volumes", "show", "nope", "-a", "web"])).code).toBe(2);
    // The domain's shapes (isVolumeId, isSnapshotId): vol_/vs_ and 16 lowercase letters or digits.
    for (const id of ["vol_short", `vol_${"a".repeat(17)}`, "vol_ABCDEF0123456789"]) {
      const res = await hangar(["volumes", "show", id, "-a", "web"]);
      expect(res.code, id).toBe(2);
      expect(res.stderr).toMatch(/expected a volume id such as vol_/);
    }
    const snap = await hangar(["volumes", "create", "data", "-a", "web", "--snapshot-id", "vs_1"]);
    expect(snap.code).toBe(2);
    expect(snap.stderr).toMatch(/expected a snapshot id such as vs_/);
    expect(api.requests.length).toBe(before);
  });

  it("a refused token fails list and create with exit 1 and says what to do, and nothing is created", async () => {
    const badHome = await mkdtemp(join(tmpdir(), "hangar-cli-volumes-badtoken-"));
    try {
      await writeFile(
        join(badHome, "local.json"),
        JSON.stringify({ api_url: api.url, token: "not-the-token" }),
      );
      let created = 0;
      api.route("POST", "/apps/tok/volumes", () => {
        created++;
        return { status: 200, body: volume() };
      });
      for (const args of [
        ["volumes", "list", "-a", "tok"],
        ["volumes", "create", "data", "-a", "tok"],
        ["volumes", "create", "data", "-a", "tok", "--json"],
      ]) {
        const res = await runCliIn(badHome, args);
        expect(res.code, args.join(" ")).toBe(1);
        expect(res.stdout).toBe("");
        expect(res.stderr).toBe(
          "Error: unauthorized\nthe API token was refused: check HANGAR_API_TOKEN, or the token in $HANGAR_HOME/local.json matches the running platform (restart `npm start` rewrites it)\n",
        );
      }
      expect(created).toBe(0);
    } finally {
      await rm(badHome, { recursive: true, force: true });
    }
  });

  it("another org's app is not found for list and create: exit 1, the API's message and a hint", async () => {
    const notFound = { error: "app rival not found", status: "not_found" };
    api.reply("GET", "/apps/rival/volumes", notFound, 404);
    api.reply("POST", "/apps/rival/volumes", notFound, 404);
    for (const args of [
      ["volumes", "list", "-a", "rival"],
      ["volumes", "create", "data", "-a", "rival"],
      ["volumes", "create", "data", "-a", "rival", "--json"],
    ]) {
      const res = await hangar(args);
      expect(res.code, args.join(" ")).toBe(1);
      expect(res.stdout).toBe("");
      expect(res.stderr).toBe(
        "Error: app rival not found\napp rival not found: create it with `hangar apps create rival`\n",
      );
    }
    expect(api.seen("POST", "/apps/rival/volumes")).toHaveLength(2);
  });

  it("list prints a table, show the details, both as JSON with --json", async () => {
    api.reply("GET", "/apps/web/volumes", [volume({ attached_machine_id: "m1" })]);
    api.reply("GET", `/apps/web/volumes/${ID}`, volume());
    const list = await hangar(["volumes", "list", "-a", "web"]);
    expect(list.stdout).toMatch(/^ID\s+STATE\s+NAME\s+SIZE\s+REGION\s+ZONE\s+ATTACHED VM\s+CREATED\n/);
    expect(list.stdout).toMatch(new RegExp(`${ID}\\s+created\\s+data\\s+1GB\\s+local\\s+host-a\\s+m1`));
    expect(JSON.parse((await hangar(["volumes", "list", "-a", "web", "--json"])).stdout)).toHaveLength(1);
    const show = await hangar(["volumes", "show", ID, "-a", "web"]);
    expect(show.stdout).toMatch(/Used\s+0\.50GiB of 1GB/);
    expect(JSON.parse((await hangar(["volumes", "show", ID, "-a", "web", "--json"])).stdout).id).toBe(ID);
  });

  it("a missing volume says how to list them", async () => {
    api.reply(
      "GET",
      `/apps/gone/volumes/${ID}`,
      { error: `volume ${ID} not found in app gone`, status: "not_found" },
      404,
    );
    const res = await hangar(["volumes", "show", ID, "-a", "gone"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("list them with `hangar volumes list -a gone`");
  });

  it("extend sends the new size; fork creates a copy from the source", async () => {
    api.reply("PUT", `/apps/web/volumes/${ID}/extend`, {
      needs_restart: false,
      volume: volume({ size_gb: 4 }),
    });
    const ext = await hangar(["volumes", "extend", ID, "-a", "web", "-s", "4"]);
    expect(ext.stdout).toBe(`Volume ${ID} extended to 4GB\n`);
    expect(api.seen("PUT", `/apps/web/volumes/${ID}/extend`)[0]?.body).toEqual({ size_gb: 4 });
    api.reply("POST", "/apps/fork/volumes", volume({ id: "vol_1111111111111111" }));
    api.reply("GET", `/apps/fork/volumes/${ID}`, volume({ size_gb: 2 }));
    const fork = await hangar(["volumes", "fork", ID, "-a", "fork", "--json"]);
    expect(JSON.parse(fork.stdout).id).toBe("vol_1111111111111111");
    expect(api.seen("POST", "/apps/fork/volumes")[0]?.body).toEqual({
      name: "data",
      region: "local",
      size_gb: 2,
      source_volume_id: ID,
    });
  });

  it("destroy refuses without --yes when there is no terminal, and destroys nothing", async () => {
    api.reply("GET", `/apps/keep/volumes/${ID}`, volume());
    const res = await hangar(["volumes", "destroy", ID, "-a", "keep"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("refusing to destroy volume");
    expect(res.stderr).toContain(`hangar volumes destroy ${ID} --yes`);
    expect(api.seen("DELETE", `/apps/keep/volumes/${ID}`)).toEqual([]);
  });

  it("destroy asks on a terminal: no keeps the volume, yes destroys it", async () => {
    api.reply("GET", `/apps/ask/volumes/${ID}`, volume());
    api.reply("DELETE", `/apps/ask/volumes/${ID}`, volume({ state: "destroyed" }));
    const no = await hangarOnTty(["volumes", "destroy", ID, "-a", "ask"], "n\n");
    expect(no.code).toBe(1);
    expect(no.stderr).toContain(`Destroy volume ${ID} (data, 1GB)?`);
    expect(api.seen("DELETE", `/apps/ask/volumes/${ID}`)).toEqual([]);
    const yes = await hangarOnTty(["volumes", "destroy", ID, "-a", "ask"], "y\n");
    expect(yes.code).toBe(0);
    expect(yes.stdout).toBe(`Volume ${ID} (data) destroyed\n`);
    expect(api.seen("DELETE", `/apps/ask/volumes/${ID}`)).toHaveLength(1);
  });

  it("destroy of an attached volume prints the API's refusal", async () => {
    api.reply("GET", `/apps/att/volumes/${ID}`, volume({ attached_machine_id: "m1" }));
    api.reply(
      "DELETE",
      `/apps/att/volumes/${ID}`,
      {
        error: `volume ${ID} is attached to machine m1; destroy the machine first`,
        status: "conflict",
      },
      409,
    );
    const res = await hangar(["volumes", "destroy", ID, "-a", "att", "--yes"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("is attached to machine m1; destroy the machine first");
  });

  it("snapshots list and create", async () => {
    const snap = {
      id: "vs_1",
      size: 2 ** 20,
      digest: "sha256:ab",
      created_at: "2026-12-05T07:00:00Z",
      status: "created",
      retention_days: 5,
      type: "on_demand",
    };
    api.reply("GET", `/apps/web/volumes/${ID}/snapshots`, [snap]);
    api.reply("POST", `/apps/web/volumes/${ID}/snapshots`, snap);
    const list = await hangar(["volumes", "snapshots", "list", ID, "-a", "web"]);
    expect(list.stdout).toMatch(/vs_1\s+created\s+1\.0MiB\s+on_demand\s+5d/);
    const created = await hangar(["volumes", "snapshots", "create", ID, "-a", "web"]);
    expect(created.stdout).toBe(`Snapshot vs_1 of volume ${ID} created (1.0MiB, sha256:ab)\n`);
    expect(
      JSON.parse((await hangar(["volumes", "snapshots", "list", ID, "-a", "web", "--json"])).stdout),
    ).toEqual([snap]);
  });
});
