// The rebuild both `pnpm bench eventstore` and its profiler (eventstore-profile.ts) time: a stream of
// machine events replayed by the one ordered reader and folded into each machine's state.
import { type MachineState, machineDecider, type machinesStream } from "@hangar/domain";
import { type EventStore, replay } from "@hangar/eventstore";

export async function rebuildMachines(
  store: EventStore,
  stream: typeof machinesStream,
): Promise<{ events: number; states: Map<string, MachineState> }> {
  const states = new Map<string, MachineState>();
  const r = await replay(store, stream, {
    onEvents(events, aggregateId) {
      let s = states.get(aggregateId) ?? machineDecider.initialState();
      for (const e of events) s = machineDecider.evolve(s, e.event);
      states.set(aggregateId, s);
    },
  });
  const done = await r.caughtUp;
  await r.stop();
  return { events: done.events, states };
}
