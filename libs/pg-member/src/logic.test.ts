import { describe, expect, it } from "vitest";
import {
  canFollowByStreaming,
  conninfo,
  hasMajority,
  lsnBytes,
  memberProblem,
  membersProblem,
  memoryConf,
  parseTimelineHistory,
  passwdEntry,
  pgHbaText,
  routerTarget,
  serverConfText,
  shouldFence,
  synchronousStandbyNames,
} from "./logic.js";
import { memberSettings } from "./settings.js";

const members = [
  { id: "a1", address: "fdaa::1" },
  { id: "b2", address: "fdaa::2" },
  { id: "c3", address: "fdaa::3" },
];

describe("majority and fencing", () => {
  it("counts the member itself", () => {
    expect(hasMajority(3, 1)).toBe(true);
    expect(hasMajority(3, 0)).toBe(false);
    expect(hasMajority(2, 0)).toBe(false);
    expect(hasMajority(2, 1)).toBe(true);
    expect(hasMajority(5, 1)).toBe(false);
    expect(hasMajority(5, 2)).toBe(true);
    expect(hasMajority(1, 0)).toBe(true);
    expect(hasMajority(0, 0)).toBe(true);
  });
  it("fences once the majority has been missing for the bound", () => {
    expect(shouldFence({ now: 10_000, lastMajorityAt: 7_001, fenceAfterMs: 3_000 })).toBe(false);
    expect(shouldFence({ now: 10_000, lastMajorityAt: 7_000, fenceAfterMs: 3_000 })).toBe(true);
  });
});

describe("routerTarget", () => {
  const view = (
    id: string,
    role: "primary" | "replica" | null,
    fenced: boolean,
    timeline: number | null,
  ) => ({
    id,
    address: `fdaa::${id}`,
    role,
    fenced,
    timeline,
  });
  it("picks the unfenced primary of the highest timeline", () => {
    expect(routerTarget([view("1", "replica", false, 2), view("2", "primary", false, 2)])?.id).toBe("2");
    expect(routerTarget([view("1", "primary", false, 1), view("2", "primary", false, 2)])?.id).toBe("2");
    expect(routerTarget([view("1", "primary", true, 3), view("2", "primary", false, 2)])?.id).toBe("2");
  });
  it("has none without an unfenced primary", () => {
    expect(
      routerTarget([
        view("1", "primary", true, 1),
        view("2", "replica", false, 1),
        view("3", null, false, null),
      ]),
    ).toBeUndefined();
    expect(routerTarget([])).toBeUndefined();
  });
});

describe("synchronous_standby_names", () => {
  it("is ANY 1 of the others with 3 or more members, else none", () => {
    expect(synchronousStandbyNames("a1", members)).toBe('ANY 1 ("b2", "c3")');
    expect(synchronousStandbyNames("a1", members.slice(0, 2))).toBe("");
    expect(synchronousStandbyNames("a1", [])).toBe("");
  });
});

describe("server configuration text", () => {
  const base = {
    port: 5433,
    listen: "::",
    socketDir: "/data/run",
    selfId: "a1",
    members,
    replPassword: "it's\\secret",
    fenced: false,
    extra: ["shared_buffers=16MB"],
  };
  it("writes a primary's settings with its sync standbys and no conninfo", () => {
    const text = serverConfText(base);
    expect(text).toContain("listen_addresses = '*'");
    expect(text).toContain(`synchronous_standby_names = 'ANY 1 ("b2", "c3")'`);
    expect(text).toContain("default_transaction_read_only = off");
    expect(text).toContain("primary_conninfo = ''");
    expect(text).toContain("wal_log_hints = on");
    expect(text.trimEnd().endsWith("shared_buffers=16MB")).toBe(true);
  });
  it("fences with read-only defaults and a standby name no member has", () => {
    const text = serverConfText({ ...base, fenced: true });
    expect(text).toContain("default_transaction_read_only = on");
    expect(text).toContain("synchronous_standby_names = 'hangar_fenced'");
  });
  it("quotes a replica's conninfo (application_name = its id) for libpq and then for the file", () => {
    const text = serverConfText({ ...base, selfId: "b2", primary: { id: "a1", address: "fdaa::1" } });
    const inner = conninfo({
      host: "fdaa::1",
      port: 5433,
      user: "repl",
      password: "it's\\secret",
      application_name: "b2",
      sslmode: "disable",
      connect_timeout: 5,
    });
    expect(inner).toContain(String.raw`password='it\'s\\secret'`);
    expect(text).toContain(`primary_conninfo = '${inner.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`);
  });
  it("pg_hba: local peer and scram-sha-256 for every address, replication too", () => {
    const hba = pgHbaText();
    expect(hba).toContain("local all all peer");
    expect(hba).toContain("host all all ::/0 scram-sha-256");
    expect(hba).toContain("host replication all ::/0 scram-sha-256");
    expect(hba).not.toMatch(/trust/);
  });
});

describe("memoryConf", () => {
  it("gives shared_buffers a quarter of the machine's memory, at least 16 MB", () => {
    expect(memoryConf(256 * 1024 * 1024)).toEqual(["shared_buffers = '64MB'"]);
    expect(memoryConf(32 * 1024 * 1024)).toEqual(["shared_buffers = '16MB'"]);
    expect(memoryConf(undefined)).toEqual([]);
  });
});

describe("input checks", () => {
  it("accepts members with IP addresses and refuses anything else", () => {
    expect(membersProblem(members)).toBeUndefined();
    expect(membersProblem("x")).toMatch(/array/);
    expect(membersProblem([members[0], members[0]])).toMatch(/twice/);
    expect(memberProblem({ id: "a1", address: "db.internal" })).toMatch(/IP address/);
    expect(memberProblem({ id: "a1' host=evil", address: "fdaa::1" })).toMatch(/letters/);
    expect(memberProblem(null)).toMatch(/object/);
  });
});

describe("lsnBytes and passwdEntry", () => {
  it("reads LSNs as Postgres prints them", () => {
    expect(lsnBytes("0/3000148")).toBe(0x3000148);
    expect(lsnBytes("1/0")).toBe(2 ** 32);
    expect(lsnBytes(null)).toBeNull();
    expect(lsnBytes("junk")).toBeNull();
  });
  it("finds a user's ids", () => {
    expect(
      passwdEntry(
        "root:x:0:0::/root:/bin/bash\npostgres:x:999:999::/var/lib/postgresql:/bin/bash\n",
        "postgres",
      ),
    ).toEqual({ uid: 999, gid: 999 });
    expect(passwdEntry("root:x:0:0::/root:/bin/bash\n", "postgres")).toBeUndefined();
  });
});

describe("memberSettings", () => {
  const secrets = {
    OPERATOR_PASSWORD: "o",
    REPL_PASSWORD: "r",
    HANGAR_PG_AGENT_TOKEN: "t",
    FLY_MACHINE_ID: "abc123",
  };
  it("has a machine's defaults", () => {
    expect(memberSettings(secrets)).toMatchObject({
      dataDir: "/data/postgresql",
      binDir: "/usr/lib/postgresql/15/bin",
      pgPort: 5433,
      routerPort: 5432,
      controlPort: 5500,
      listen: "::",
      osUser: "postgres",
      fenceCheckMs: 500,
      fenceAfterMs: 3000,
      memberId: "abc123",
      extraConf: [],
    });
  });
  it("names every missing secret and bad value", () => {
    expect(() =>
      memberSettings({ FLY_MACHINE_ID: "abc", HANGAR_PG_PORT: "x", HANGAR_PG_LISTEN: "any" }),
    ).toThrow(/HANGAR_PG_LISTEN.*HANGAR_PG_PORT.*OPERATOR_PASSWORD.*REPL_PASSWORD.*HANGAR_PG_AGENT_TOKEN/);
    expect(() => memberSettings({ ...secrets, HANGAR_PG_CONF: "shared_buffers" })).toThrow(/name=value/);
  });
});

describe("following a new primary", () => {
  // As postgres 15 writes 00000003.history: timeline 1 ended at 0/4C77560, timeline 2 at 0/5000060.
  const history = parseTimelineHistory(
    "1\t0/4C77560\tno recovery target specified\n\n2\t0/5000060\tno recovery target specified\n",
  );
  it("reads a timeline history file", () => {
    expect([...history]).toEqual([
      [1, 0x4c77560],
      [2, 0x5000060],
    ]);
    expect(parseTimelineHistory("")).toEqual(new Map());
    expect(() => parseTimelineHistory("1\tjunk\treason\n")).toThrow(/unreadable line/);
  });
  it("streams on when the standby holds nothing past where its timeline left the primary's history", () => {
    const primary = { primaryTimeline: 3, history };
    expect(canFollowByStreaming({ ...primary, timeline: 3, heldBytes: 0x9000000 })).toBe(true);
    expect(canFollowByStreaming({ ...primary, timeline: 1, heldBytes: 0x4c77560 })).toBe(true);
    expect(canFollowByStreaming({ ...primary, timeline: 2, heldBytes: 0x4d00000 })).toBe(true);
  });
  it("needs a rewind past that point, on a timeline not in the history, or on a newer one", () => {
    const primary = { primaryTimeline: 3, history };
    // A replica that streamed a restarted old primary's end-of-recovery checkpoint on timeline 1.
    expect(canFollowByStreaming({ ...primary, timeline: 1, heldBytes: 0x4c77561 })).toBe(false);
    expect(canFollowByStreaming({ ...primary, timeline: 2, heldBytes: 0x5000061 })).toBe(false);
    expect(canFollowByStreaming({ primaryTimeline: 3, history: new Map(), timeline: 1, heldBytes: 1 })).toBe(
      false,
    );
    expect(canFollowByStreaming({ ...primary, timeline: 4, heldBytes: 1 })).toBe(false);
  });
});
