import {
  type ScalingCommand,
  type ScalingEvent,
  type ScalingState,
  scalingDecider,
  scalingStream,
} from "@hangar/domain";
import {
  type AggregateStream,
  CommandHandler,
  type EventStore,
  isConcurrencyError,
} from "@hangar/eventstore";
import { type AggregateView, handleThenWait, KeyedSerial } from "@hangar/service";

export type ScalingView = AggregateView<ScalingState, ScalingCommand, ScalingEvent>;
export type FinishScaleAction = Extract<ScalingCommand, { type: "FinishScaleAction" }>;

/**
 * The scheduler's writes to the SCALING stream, one at a time per app. A decision is appended on the
 * exact version of the app's log it was made on, without retry: if another scheduler wrote in between
 * it loses (ConcurrencyError) and the next pass decides again on what is there now. That, with the
 * decider's one-unfinished-action-per-machine rule, keeps two schedulers from acting twice.
 */
export class ScalingLog {
  private readonly finisher: CommandHandler<ScalingState, ScalingCommand, ScalingEvent>;
  /** Our own writes to one app never race each other; only another scheduler's can conflict. */
  private readonly chains = new KeyedSerial();

  constructor(
    private readonly store: EventStore,
    private readonly view: ScalingView,
    private readonly stream: AggregateStream<ScalingEvent> = scalingStream,
    /** Whether this scheduler may still write decisions (its lease is held); checked right before each. */
    private readonly mayDecide: () => boolean = () => true,
  ) {
    this.finisher = new CommandHandler(store, stream, scalingDecider);
  }

  /**
   * Records a pass's commands (a panic change and/or a decision) as one message, on `expectedSeq`: the
   * version of the app's log the pass read. Resolves false when the log moved since (another writer,
   * or an action of ours that finished meanwhile) or this scheduler lost its lease: nothing was recorded.
   */
  record(app: string, commands: ScalingCommand[], commandId: string, expectedSeq: number): Promise<boolean> {
    return this.serial(app, async () => {
      if (!this.mayDecide() || this.view.seqOf(app) !== expectedSeq) return false;
      let state = this.view.get(app) ?? scalingDecider.initialState();
      const events: ScalingEvent[] = [];
      for (const c of commands) {
        for (const e of scalingDecider.decide(c, state)) {
          events.push(e);
          state = scalingDecider.evolve(state, e);
        }
      }
      if (events.length === 0) return true;
      try {
        const ack = await this.store.append(this.stream, app, events, {
          commandId,
          expectedSeq,
        });
        await this.view.waitForSeq(ack.seq);
        return true;
      } catch (err) {
        if (isConcurrencyError(err)) return false;
        throw err;
      }
    });
  }

  /**
   * Records how an action ended. Idempotent: an action already ended stays as it ended, and then
   * this resolves false.
   */
  finish(app: string, command: FinishScaleAction): Promise<boolean> {
    return this.serial(app, async () => {
      const res = await handleThenWait(this.finisher, this.view, app, command, {
        commandId: `finish-${command.decisionId}-${command.machineId}`,
      });
      return res.events.length > 0 && !res.duplicate;
    });
  }

  private serial<T>(app: string, fn: () => Promise<T>): Promise<T> {
    return this.chains.run(app, fn);
  }
}
