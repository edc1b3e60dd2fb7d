import type { CommandHandler, CommandResult, EventMetadata } from "@hangar/eventstore";

/** A read model that can tell when it has folded a stream sequence. */
export interface SequencedView {
  waitForSeq(seq: number, timeoutMs?: number): Promise<void>;
}

/**
 * Handles a command, then waits until `view` has folded the message it appended (or, for a command
 * that decided nothing, the aggregate's last message), so a read right after sees the write.
 */
export async function handleThenWait<S, C, E extends { type: string }>(
  handler: CommandHandler<S, C, E>,
  view: SequencedView,
  aggregateId: string,
  command: C,
  meta: EventMetadata,
): Promise<CommandResult<S, E>> {
  const res = await handler.handle(aggregateId, command, meta);
  await view.waitForSeq(res.seq);
  return res;
}
