/**
 * The pure heart of an aggregate: `decide` turns a command and the current state into events (or
 * throws a DomainError), `evolve` folds one event into the state. No I/O, so it is tested without NATS.
 */
export interface Decider<S, C, E> {
  initialState(): S;
  decide(command: C, state: S): E[];
  evolve(state: S, event: E): S;
}

/** Folds events into a state, starting from `state` (the initial state by default). */
export function fold<S, C, E>(
  decider: Decider<S, C, E>,
  events: Iterable<E>,
  state = decider.initialState(),
): S {
  let s = state;
  for (const e of events) s = decider.evolve(s, e);
  return s;
}
