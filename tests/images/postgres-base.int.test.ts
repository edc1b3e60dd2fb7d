// The platform-made postgres:15 runs as the official image does: its entrypoint, started as root in
// the image's root filesystem (chroot in a mount and pid namespace of its own, the host's network),
// makes the cluster with the official variables, runs the init scripts and serves TCP as postgres.
// Making postgres:15 the first time on a host is a second mmdebstrap run (about three minutes on a
// 2-core machine), more than CI's budget for the bases: it runs when HANGAR_POSTGRES_BASE_TEST=1
// (`HANGAR_POSTGRES_BASE_TEST=1 pnpm vitest run tests/images/postgres-base.int.test.ts`).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import {
  BlobStore,
  ImageRegistry,
  LayerStore,
  mountImageRoot,
  platformBaseImages,
  unmountIfMounted,
} from "@hangar/oci";
import { freePort } from "@hangar/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, expect, inject, it } from "vitest";

const enabled = process.env.HANGAR_POSTGRES_BASE_TEST === "1";
let nc: NatsConnection;
let work: string;
let merged: string;
let server: ChildProcess | undefined;
let output = "";

beforeAll(async () => {
  if (!enabled) return;
  nc = await connect({ servers: inject("natsUrl") });
  work = await mkdtemp(join(tmpdir(), "hangar-postgres-base-"));
  merged = join(work, "merged");
}, 60_000);
afterAll(async () => {
  if (server?.exitCode === null) await stop(server);
  if (merged) await unmountIfMounted(merged);
  await nc?.drain();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Stops the server as a runtime would: the image's StopSignal (SIGINT) to the namespace's first
 * process (unshare's child; unshare itself ignores signals while it waits).
 */
async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8");
  for (const pid of children.trim().split(" ").filter(Boolean)) process.kill(Number(pid), "SIGINT");
  await exited;
}

/** Starts the image's entrypoint with `env` and `args` as `docker run` would, as root. */
function start(
  config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[] },
  env: string[],
  args: string[],
) {
  const argv = [...(config.Entrypoint ?? []), ...(args.length > 0 ? args : (config.Cmd ?? []))];
  const script = 'mount --rbind /dev "$1/dev" && mount -t proc proc "$1/proc" && shift && exec chroot "$@"';
  const child = spawn(
    "unshare",
    [
      "--mount",
      "--pid",
      "--fork",
      "--kill-child=SIGINT",
      "sh",
      "-c",
      script,
      "sh",
      merged,
      merged,
      "env",
      "-i",
      ...(config.Env ?? []),
      ...env,
      ...argv,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  return child;
}

it.runIf(enabled)(
  "makes postgres:15, whose entrypoint honours POSTGRES_* and the init scripts and serves as postgres",
  async () => {
    const blobs = await BlobStore.open(nc, { bucket: `test-postgres-base-blobs-${process.pid}` });
    const registry = await ImageRegistry.open(nc, blobs, { bucket: `test-postgres-base-${process.pid}` });
    const image = await platformBaseImages(registry).make("postgres:15");
    if (image === undefined) throw new Error("the platform makes postgres:15");
    expect(image.config.config).toMatchObject({
      Entrypoint: ["docker-entrypoint.sh"],
      Cmd: ["postgres"],
      StopSignal: "SIGINT",
      ExposedPorts: { "5432/tcp": {} },
      Volumes: { "/var/lib/postgresql/data": {} },
      Env: expect.arrayContaining([
        expect.stringContaining("/usr/lib/postgresql/15/bin"),
        "PGDATA=/var/lib/postgresql/data",
      ]),
    });

    const layers = new LayerStore(join(work, "layers"), blobs);
    await mountImageRoot(layers, image.manifest.layers, {
      upper: join(work, "upper"),
      work: join(work, "work"),
      target: merged,
    });
    const initdb = join(merged, "docker-entrypoint-initdb.d");
    await mkdir(initdb, { recursive: true });
    await writeFile(
      join(initdb, "1-schema.sql"),
      "CREATE TABLE greeting (text text); INSERT INTO greeting VALUES ('hello');\n",
    );
    // A script that is not executable is sourced: it sees the entrypoint's psql command.
    await writeFile(
      join(initdb, "2-more.sh"),
      `"\${psql[@]}" -c "INSERT INTO greeting VALUES ('from sh as '||current_user)"\n`,
    );

    // Refused without a password, as the official image.
    const refused = start(image.config.config, [], []);
    const code = await new Promise((resolve) => refused.once("exit", resolve));
    expect(code).not.toBe(0);
    expect(output).toMatch(/POSTGRES_PASSWORD is not set/);

    const port = await freePort();
    server = start(
      image.config.config,
      ["POSTGRES_USER=app", "POSTGRES_PASSWORD=s3cret", "POSTGRES_DB=shop"],
      ["postgres", "-p", String(port)],
    );
    const client = async (password: string, host = "127.0.0.1") => {
      const c = new pg.Client({ host, port, user: "app", password, database: "shop" });
      await c.connect();
      return c;
    };
    let db: pg.Client | undefined;
    for (let i = 0; i < 120 && db === undefined; i++) {
      db = await client("s3cret").catch(async () => {
        if (server?.exitCode !== null) throw new Error(`postgres exited:\n${output}`);
        await new Promise((r) => setTimeout(r, 500));
        return undefined;
      });
    }
    if (db === undefined) throw new Error(`postgres did not answer on ${port}:\n${output}`);
    try {
      const rows = (await db.query("SELECT text FROM greeting ORDER BY text")).rows.map((r) => r.text);
      expect(rows).toEqual(["from sh as app", "hello"]);
      const who = await db.query(
        "SELECT current_setting('data_directory') AS dir, current_setting('server_encoding') AS enc, (SELECT usesuper FROM pg_user WHERE usename = 'app') AS superuser",
      );
      expect(who.rows[0]).toEqual({ dir: "/var/lib/postgresql/data", enc: "UTF8", superuser: true });
    } finally {
      await db.end();
    }
    // As in the official image, initdb's pg_hba trusts loopback; any other address needs the password.
    const outside = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === "IPv4" && !a.internal)?.address;
    if (outside === undefined) throw new Error("this test needs a non-loopback IPv4 address on the host");
    await expect(client("wrong", outside)).rejects.toThrow(/password authentication failed for user "app"/);
    await (await client("s3cret", outside)).end();
    // The server runs as the image's postgres user (uid 999), not root.
    const ps = await new Promise<string>((resolve) => {
      const p = spawn("ps", ["-o", "uid=,comm=", "-u", "999"]);
      let out = "";
      p.stdout.on("data", (b: Buffer) => (out += b.toString()));
      p.once("exit", () => resolve(out));
    });
    expect(ps).toMatch(/999 postgres/);
    await stop(server);
    expect(output).toMatch(/database system is shut down/);
  },
  600_000,
);
