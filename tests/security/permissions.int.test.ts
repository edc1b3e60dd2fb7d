// Acceptance 4 of issue 10: each control-plane user, connected to a nats-server running the
// generated authorization block, can publish and subscribe to exactly the subjects of its entry in
// the permission table. Every user tries every subject of every entry (each wildcard as a concrete
// subject) plus subjects outside all of them; what gets through must be exactly its own.
// The server has no streams, so a probe that gets through stores nothing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type NatsCredentials,
  natsUsers,
  OPERATOR_USER,
  permissionsOf,
  writeNatsCredentials,
} from "@hangar/service";
import { type NatsServer, startNatsServer } from "@hangar/testkit";
import { AuthorizationError, connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectViolations, instanceOf, matches, Prober } from "./probe.js";

const HOSTS = ["host-a", "host-b"];
const users = natsUsers(HOSTS);
const OUTSIDE = ["probe.outside", "ev.volume.probe", "$JS.API.STREAM.DELETE.MACHINES", "_INBOX.probe"];
const everySubject = [
  ...new Set([
    ...users.flatMap((u) => {
      const p = permissionsOf(u);
      return [...p.publish, ...p.subscribe].map(instanceOf);
    }),
    ...OUTSIDE,
  ]),
].sort();

let dir: string;
let creds: NatsCredentials;
let server: NatsServer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hangar-nats-perms-"));
  creds = await writeNatsCredentials(join(dir, "creds"), users);
  server = await startNatsServer({ authorization: creds.authorization });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("refuses a connection without credentials", async () => {
  await expect(connect({ servers: server.url, reconnect: false })).rejects.toBeInstanceOf(AuthorizationError);
});

describe.each(users.map((u) => [u.user, u] as const))("user %s", (_name, spec) => {
  it("publishes and subscribes to exactly the subjects of its table entry", async () => {
    const allowed = permissionsOf(spec);
    const prober = await Prober.open(server.url, creds, spec.user);
    const violations = collectViolations(prober.nc);
    try {
      const published: string[] = [];
      const subscribed: string[] = [];
      for (const subject of everySubject) {
        if (await prober.canPublish(subject)) published.push(subject);
        if (await prober.canSubscribe(subject)) subscribed.push(subject);
      }
      // A denied subject (another user's durable consumer) is refused although an allow matches it.
      const expectedPublish = everySubject.filter(
        (s) => allowed.publish.some((p) => matches(p, s)) && !allowed.denyPublish.some((p) => matches(p, s)),
      );
      const expectedSubscribe = everySubject.filter((s) => allowed.subscribe.some((p) => matches(p, s)));
      expect(published).toEqual(expectedPublish);
      expect(subscribed).toEqual(expectedSubscribe);
      // Every subject of its own entry is in the probe, and at least one outside it was refused.
      for (const p of [...allowed.publish]) expect(published).toContain(instanceOf(p));
      for (const p of [...allowed.subscribe]) expect(subscribed).toContain(instanceOf(p));
      expect(published).not.toContain("probe.outside");
      // The refusals were reported as permission violations, by type.
      await prober.nc.flush();
      expect(violations.length).toBeGreaterThan(0);
    } finally {
      await prober.close();
    }
  });
});

describe("volumes (issue 15)", () => {
  /** What `user` may publish of `subjects`, probed on the server. */
  async function published(user: string, subjects: string[]): Promise<string[]> {
    const prober = await Prober.open(server.url, creds, user);
    try {
      const out: string[] = [];
      for (const subject of subjects) if (await prober.canPublish(subject)) out.push(subject);
      return out;
    } finally {
      await prober.close();
    }
  }

  it("lets a host agent ask only its own host's auto-extend: no other host's, no other volume command, no VOLUMES append", async () => {
    const tried = [
      "cmd.volume.auto_extend.host-a",
      "cmd.volume.auto_extend.host-b",
      "cmd.volume.extend",
      "cmd.volume.create",
      "cmd.volume.destroy",
      "cmd.volume.snapshot",
      "cmd.host.host-b.volume.delete",
      "cmd.host.host-b.volume.create",
      "ev.volume.app1.vol_0123456789abcdef",
    ];
    expect(await published("host-agent-host-a", tried)).toEqual(["cmd.volume.auto_extend.host-a"]);
    expect(await published("host-agent-host-b", tried)).toEqual(["cmd.volume.auto_extend.host-b"]);
    // The gateway's cmd.volume.* is one token deep: no host's auto-extend subject.
    expect(await published("gateway", tried.slice(0, 2))).toEqual([]);
  });

  it("keeps the proxy and the builder out of the VOLUME_SNAPSHOTS bucket", async () => {
    const bucket = [
      "$JS.API.STREAM.INFO.OBJ_VOLUME_SNAPSHOTS",
      "$JS.API.STREAM.CREATE.OBJ_VOLUME_SNAPSHOTS",
      "$JS.API.STREAM.MSG.GET.OBJ_VOLUME_SNAPSHOTS",
      "$JS.API.STREAM.PURGE.OBJ_VOLUME_SNAPSHOTS",
      "$JS.API.CONSUMER.CREATE.OBJ_VOLUME_SNAPSHOTS.probe",
      "$JS.API.DIRECT.GET.OBJ_VOLUME_SNAPSHOTS",
      "$JS.API.DIRECT.GET.OBJ_VOLUME_SNAPSHOTS.probe",
      "$O.VOLUME_SNAPSHOTS.M.probe",
      "$O.VOLUME_SNAPSHOTS.C.probe",
    ];
    for (const user of ["proxy", "builder"]) {
      expect(await published(user, bucket), user).toEqual([]);
      const prober = await Prober.open(server.url, creds, user);
      try {
        expect(await prober.canSubscribe("$O.VOLUME_SNAPSHOTS.C.probe"), user).toBe(false);
      } finally {
        await prober.close();
      }
    }
    // The probe reaches what the bucket's users may do: the volume service may.
    expect(await published("volume", bucket)).toEqual(bucket);
  });
});

it("lets the operator publish and subscribe anywhere", async () => {
  const prober = await Prober.open(server.url, creds, OPERATOR_USER);
  try {
    for (const subject of everySubject) {
      expect(await prober.canPublish(subject)).toBe(true);
      expect(await prober.canSubscribe(subject)).toBe(true);
    }
  } finally {
    await prober.close();
  }
});
