import type { MachineEvent } from "@hangar/domain";
import type { RecordedEvent } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { toEventRecord } from "./events.js";

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
          signal: "SIGKILL",
          requested_stop: false,
          restarting: false,
          oom_killed: true,
        },
      },
    });
    const plain = toEventRecord(recorded({ type: "MachineExited", data: { exitCode: 1, requested: false } }));
    expect(plain?.request?.exit_event).toMatchObject({ exit_code: 1, oom_killed: false });
  });
});
