import { describe, expect, it } from "vitest";
import {
  caughtUp,
  chooseCandidate,
  fencedPrimaryAction,
  fenceWaitRemainingMs,
  isSlowPrimary,
  isWritablePrimary,
  needsRejoin,
  primaryLost,
  resumeChoice,
  shouldUnfence,
} from "./decisions.js";
import type { MemberStatus } from "./member-client.js";

/** A member's status as its agent answers it; `at` sets the received and replayed LSN bytes. */
function status(over: Partial<MemberStatus> & { at?: number } = {}): MemberStatus {
  const { at = 100, ...rest } = over;
  const lsn = `0/${at.toString(16).toUpperCase()}`;
  return {
    member_id: "m",
    state: "replica",
    role: "replica",
    fenced: false,
    pg_up: true,
    timeline: 1,
    lsn: { current: null, receive: lsn, replay: lsn },
    lsn_bytes: { current: null, receive: at, replay: at },
    replication: [],
    majority: true,
    peers_seen: [],
    members: [],
    xact_commit: 0,
    numbackends: 0,
    sync_standby_names: "",
    ...rest,
  };
}

const primary = (over: Partial<MemberStatus> = {}) =>
  status({
    state: "primary",
    role: "primary",
    lsn_bytes: { current: 500, receive: null, replay: null },
    ...over,
  });

describe("is the primary lost", () => {
  it("counts only an up, unfenced primary as writable", () => {
    expect(isWritablePrimary(primary())).toBe(true);
    expect(isWritablePrimary(undefined)).toBe(false);
    expect(isWritablePrimary(primary({ fenced: true }))).toBe(false);
    expect(isWritablePrimary(primary({ pg_up: false }))).toBe(false);
    expect(isWritablePrimary(status())).toBe(false);
  });

  it("is lost once it has not been writable for the whole loss time, not before", () => {
    const silent = { lastWritableAtMs: 10_000, lastSlowAtMs: 0 };
    expect(primaryLost(silent, 11_999, 2_000, 6_000)).toBe(false);
    expect(primaryLost(silent, 12_000, 2_000, 6_000)).toBe(true);
  });

  it("gives an agent that keeps answering that its postgres is slow the longer time", () => {
    // Slow answers keep coming (the last one 250 ms ago): lost only after the longer time.
    const slowUntil = (now: number) => ({ lastWritableAtMs: 10_000, lastSlowAtMs: now - 250 });
    expect(primaryLost(slowUntil(14_000), 14_000, 2_000, 6_000)).toBe(false);
    expect(primaryLost(slowUntil(15_999), 15_999, 2_000, 6_000)).toBe(false);
    expect(primaryLost(slowUntil(16_000), 16_000, 2_000, 6_000)).toBe(true);
    // Silent for the loss time after its last slow answer: lost.
    expect(primaryLost({ lastWritableAtMs: 10_000, lastSlowAtMs: 12_000 }, 14_000, 2_000, 60_000)).toBe(true);
    expect(isSlowPrimary(primary({ pg_up: false }))).toBe(true);
    expect(isSlowPrimary(primary({ pg_up: false, fenced: true }))).toBe(false);
    expect(isSlowPrimary(primary())).toBe(false);
    expect(isSlowPrimary(undefined)).toBe(false);
  });
});

describe("fencing wait", () => {
  it("counts from the last time the old primary answered unfenced", () => {
    expect(fenceWaitRemainingMs(10_000, 11_000, 4_000)).toBe(3_000);
    expect(fenceWaitRemainingMs(10_000, 14_000, 4_000)).toBe(0);
    expect(fenceWaitRemainingMs(10_000, 20_000, 4_000)).toBe(0);
  });

  it("unfences only a fenced primary that is up and sees its majority", () => {
    expect(shouldUnfence(primary({ fenced: true }))).toBe(true);
    expect(shouldUnfence(primary({ fenced: true, majority: false }))).toBe(false);
    expect(shouldUnfence(primary({ fenced: true, pg_up: false }))).toBe(false);
    expect(shouldUnfence(primary())).toBe(false);
    expect(shouldUnfence(status({ fenced: true }))).toBe(false);
    expect(shouldUnfence(undefined)).toBe(false);
  });

  it("hands a fenced primary's place to a streaming replica with synchronous replication, else unfences it", () => {
    const back = primary({ fenced: true });
    const replica = status();
    expect(fencedPrimaryAction(back, [replica, status()], 3)).toBe("failover");
    // A replica that does not answer: the failover would wait for it, so the old primary takes writes again.
    expect(fencedPrimaryAction(back, [replica, status({ pg_up: false })], 3)).toBe("unfence");
    expect(fencedPrimaryAction(back, [replica, undefined], 3)).toBe("unfence");
    expect(fencedPrimaryAction(back, [undefined, status({ pg_up: false })], 3)).toBe("unfence");
    expect(fencedPrimaryAction(back, [status({ fenced: true })], 3)).toBe("unfence");
    // Asynchronous replication (2 members): only the old primary surely holds every acknowledged commit.
    expect(fencedPrimaryAction(back, [replica], 2)).toBe("unfence");
    expect(fencedPrimaryAction(back, [], 1)).toBe("unfence");
    // Not a fenced primary that is up and sees its majority: neither.
    expect(fencedPrimaryAction(primary(), [replica], 3)).toBeUndefined();
    expect(fencedPrimaryAction(primary({ fenced: true, majority: false }), [replica], 3)).toBeUndefined();
  });
});

describe("candidate choice", () => {
  it("chooses the replica holding the most WAL (received, else replayed)", () => {
    const choice = chooseCandidate(
      [
        { id: "a", status: status({ at: 300 }) },
        {
          id: "b",
          status: status({
            lsn: { current: null, receive: "0/1F4", replay: "0/64" },
            lsn_bytes: { current: null, receive: 500, replay: 100 },
          }),
        },
      ],
      true,
    );
    expect(choice).toEqual({ candidate: { memberId: "b", lsn: "0/1F4", lsnBytes: 500 } });
  });

  it("keeps member order on a tie, so the choice is stable", () => {
    const choice = chooseCandidate(
      [
        { id: "a", status: status() },
        { id: "b", status: status() },
      ],
      true,
    );
    expect(choice).toMatchObject({ candidate: { memberId: "a" } });
  });

  it("waits while a replica is silent or down under synchronous replication: the commit may be only there", () => {
    const silent = chooseCandidate(
      [
        { id: "a", status: status({ at: 900 }) },
        { id: "b", status: undefined },
      ],
      true,
    );
    expect(silent).toEqual({ wait: expect.stringContaining("b") });
    const down = chooseCandidate(
      [
        { id: "a", status: status() },
        { id: "b", status: status({ pg_up: false }) },
      ],
      true,
    );
    expect(down).toEqual({ wait: expect.stringContaining("b") });
  });

  it("takes the replicas that answer when replication is asynchronous, and waits when none does", () => {
    expect(
      chooseCandidate(
        [
          { id: "a", status: undefined },
          { id: "b", status: status() },
        ],
        false,
      ),
    ).toMatchObject({
      candidate: { memberId: "b" },
    });
    expect(chooseCandidate([{ id: "a", status: undefined }], false)).toEqual({ wait: expect.any(String) });
  });

  it("chooses the recorded candidate again when it answers, even behind another, so no second member is promoted", () => {
    const replicas = [
      { id: "a", status: status({ at: 900 }) },
      { id: "b", status: status({ at: 800 }) },
    ];
    expect(chooseCandidate(replicas, true, "b")).toMatchObject({
      candidate: { memberId: "b", lsnBytes: 800 },
    });
    expect(
      chooseCandidate([replicas[0] as (typeof replicas)[number], { id: "b", status: undefined }], false, "b"),
    ).toMatchObject({
      candidate: { memberId: "a" },
    });
  });
});

describe("resume choice", () => {
  it("records a member already promoted: primary, unfenced, on a newer timeline than the cluster's", () => {
    const members = [
      { id: "old", status: primary({ timeline: 1 }) },
      { id: "a", status: primary({ timeline: 2 }) },
      { id: "b", status: status() },
    ];
    expect(resumeChoice("old", 1, members)).toEqual({ promoted: { memberId: "a", timeline: 2 } });
  });

  it("chooses again when nobody was promoted: the old primary, a fenced or an old-timeline primary do not count", () => {
    const members = [
      { id: "old", status: primary({ timeline: 3 }) },
      { id: "a", status: primary({ timeline: 2, fenced: true }) },
      { id: "b", status: primary({ timeline: 1 }) },
      { id: "c", status: undefined },
    ];
    expect(resumeChoice("old", 1, members)).toEqual({ choose: true });
  });
});

describe("rejoin", () => {
  it("rejoins an old primary (not ready) and a member running as primary, once it answers", () => {
    expect(needsRejoin({ ready: false }, primary({ fenced: true }), 2, undefined, 0, 10_000)).toBe(true);
    expect(needsRejoin({ ready: true }, primary(), 2, undefined, 0, 10_000)).toBe(true);
    expect(needsRejoin({ ready: false }, undefined, 2, undefined, 0, 10_000)).toBe(false);
    expect(needsRejoin({ ready: false }, status({ state: "starting" }), 2, undefined, 0, 10_000)).toBe(false);
  });

  it("rejoins a replica left on an older timeline only after the grace a follow takes", () => {
    const old = status({ timeline: 1 });
    expect(needsRejoin({ ready: true }, old, 2, 1_000, 5_000, 10_000)).toBe(false);
    expect(needsRejoin({ ready: true }, old, 2, 1_000, 11_000, 10_000)).toBe(true);
    expect(needsRejoin({ ready: true }, status({ timeline: 2 }), 2, 1_000, 11_000, 10_000)).toBe(false);
  });
});

describe("switchover catch-up", () => {
  it("is ready when the replica replayed up to the fenced primary's current LSN", () => {
    expect(caughtUp(primary(), status({ at: 499 }))).toBe(false);
    expect(caughtUp(primary(), status({ at: 500 }))).toBe(true);
    expect(caughtUp(primary({ lsn_bytes: { current: null, receive: null, replay: null } }), status())).toBe(
      false,
    );
  });
});
