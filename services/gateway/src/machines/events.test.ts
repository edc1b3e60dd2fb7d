import type { MachineEvent } from "@hangar/domain";
import type { RecordedEvent } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { startsAgain, toEventRecord } from "./events.js";

function recorded(event: MachineEvent): RecordedEvent<MachineEvent> {
  return {
    event,
    eventId: "e1",
    aggregateId: "app.m1",
    timeUnixMs: 5,
    correlationId: "",
    causationId: "",
    seq: 1,
    index: 0,
  };
}

describe("toEventRecord of an exit", () => {
  it("says oom_killed in Fly's exit_event, for an OOM kill and (false) for any other exit", () => {
    const oom = toEventRecord(
      recorded({
        type: "MachineExited",
        data: { exitCode: 137, signal: "SIGKILL", requested: false, codeUnknown: false, oomKilled: true },
      }),
    );
    expect(oom).toEqual({
      id: "e1",
      timestamp: 5,
      type: "exit",
      status: "stopped",
      source: "flyd",
      request: {
        exit_event: {
          exit_code: 137,
          signal: 9,
          requested_stop: false,
          restarting: false,
          oom_killed: true,
          exited_at: "1970-01-01T00:00:00.005Z",
        },
      },
    });
    const plain = toEventRecord(recorded({ type: "MachineExited", data: { exitCode: 1, requested: false } }));
    expect(plain?.request?.exit_event).toMatchObject({ exit_code: 1, oom_killed: false });
  });
});

describe("toEventRecord in the types Fly's clients decode", () => {
  // fly-go's MachineExitEvent.Signal is an int (a name fails its json.Unmarshal of the whole machine),
  // fly-admin types it a number, and both read exited_at as a time.
  it("gives an exit's signal as its number, a real-time one's too, and none for a plain exit", () => {
    const exit = (signal: string) =>
      toEventRecord(recorded({ type: "MachineExited", data: { exitCode: 129, signal, requested: false } }))
        ?.request?.exit_event as Record<string, unknown>;
    expect(exit("SIGHUP").signal).toBe(1);
    expect(exit("SIGTERM").signal).toBe(15);
    expect(exit("SIG40").signal).toBe(40);
    expect(exit("").signal).toBeUndefined();
    expect(exit("SIGHUP").exited_at).toBe(new Date(5).toISOString());
  });

  it("counts a restart's attempt as Fly's restart_count", () => {
    const restart = toEventRecord(recorded({ type: "MachineRestarting", data: { attempt: 2 } }));
    expect(restart?.request).toMatchObject({ restart_count: 2 });
  });
});

describe("an exit's restarting", () => {
  const exited: MachineEvent = { type: "MachineExited", data: { exitCode: 1, requested: false } };
  const exitOf = (events: MachineEvent[]) => {
    const decision = events.map(recorded);
    return toEventRecord(decision[0] as RecordedEvent<MachineEvent>, startsAgain(decision, 0))?.request
      ?.exit_event as Record<string, unknown>;
  };
  it("is true when the exit's decision starts the machine again: its restart policy, or a restart asked for", () => {
    expect(
      exitOf([
        exited,
        { type: "MachineRestarting", data: { attempt: 1 } },
        { type: "MachineStartRequested", data: { instanceId: "i1" } },
      ]).restarting,
    ).toBe(true);
    expect(exitOf([exited, { type: "MachineStartRequested", data: { instanceId: "i1" } }]).restarting).toBe(
      true,
    );
  });
  it("is false for an exit that leaves the machine stopped", () => {
    expect(exitOf([exited]).restarting).toBe(false);
  });
});
