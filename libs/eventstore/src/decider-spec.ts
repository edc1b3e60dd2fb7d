import { deepStrictEqual, fail } from "node:assert/strict";
import { type Decider, fold } from "./decider.js";

/** Given/when/then for a decider: given past events, when a command, then events or an error. */
export interface DeciderSpecification<C, E> {
  given(events: E[]): {
    when(command: C): {
      then(expected: E[]): void;
      thenThrows(check: (err: unknown) => boolean): void;
    };
  };
}

/** Builds a specification for a decider (emmett's style), usable from any test runner. */
export function deciderSpec<S, C, E>(decider: Decider<S, C, E>): DeciderSpecification<C, E> {
  return {
    given(events) {
      return {
        when(command) {
          const run = () => decider.decide(command, fold(decider, events));
          return {
            // biome-ignore lint/suspicious/noThenProperty: the given/when/then vocabulary; the object is never awaited.
            then(expected) {
              deepStrictEqual(run(), expected);
            },
            thenThrows(check) {
              let events: E[];
              try {
                events = run();
              } catch (err) {
                if (!check(err)) fail(`the command threw an unexpected error: ${String(err)}`);
                return;
              }
              fail(`the command was expected to throw but decided ${JSON.stringify(events)}`);
            },
          };
        },
      };
    },
  };
}
