import {
  type ScaleDecision,
  type ScalingCommand,
  type ScalingEvent,
  type ScalingState,
  scalingDecider,
  scalingStream,
} from "@hangar/domain";
import type { AggregateStream, EventStore } from "@hangar/eventstore";
import { AggregateView } from "@hangar/service";

/** An app's autoscaling as the API shows it (snake_case, newest decision first). */
export interface ScalingView {
  app: string;
  panic: boolean;
  panic_since: string | null;
  decisions_total: number;
  decisions: DecisionView[];
}

export interface DecisionView {
  id: string;
  decided_at: string;
  current: number;
  desired: number;
  reason: string;
  inputs: Record<string, number | string | boolean>;
  actions: { kind: string; machine_id: string; region: string; outcome: string; message: string }[];
}

/** The gateway's read side of the SCALING stream: each app's recent autoscaler decisions. */
export class ScalingCatalog {
  private constructor(private readonly view: AggregateView<ScalingState, ScalingCommand, ScalingEvent>) {}

  /** Follows the stream and resolves once its history is folded in. */
  static async start(
    store: EventStore,
    stream: AggregateStream<ScalingEvent> = scalingStream,
  ): Promise<ScalingCatalog> {
    const view = await AggregateView.start(store, stream, scalingDecider);
    await view.caughtUp;
    return new ScalingCatalog(view);
  }

  /** The app's autoscaling; an app the autoscaler never acted on has no decisions. */
  scalingOf(app: string, limit = 20): ScalingView {
    const s = this.view.get(app) ?? scalingDecider.initialState();
    return {
      app,
      panic: s.panic,
      panic_since: s.panic && s.panicSinceMs > 0 ? new Date(s.panicSinceMs).toISOString() : null,
      decisions_total: s.total,
      decisions: s.decisions.slice(-limit).reverse().map(decisionView),
    };
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}

function decisionView(d: ScaleDecision): DecisionView {
  const i = d.inputs;
  return {
    id: d.decisionId,
    decided_at: new Date(d.decidedAtMs).toISOString(),
    current: d.current,
    desired: d.desired,
    reason: d.reason,
    inputs: {
      panic_concurrency: i.panicConcurrency,
      stable_concurrency: i.stableConcurrency,
      concurrency_type: i.concurrencyType,
      soft_limit: i.softLimit,
      min_machines: i.minMachines,
      max_machines: i.maxMachines,
      running: i.running,
      sleeping: i.sleeping,
      panic: i.panic,
      panic_window_s: i.panicWindowS,
      stable_window_s: i.stableWindowS,
      proxies: i.proxies,
      busiest_region: i.busiestRegion,
      autostop: i.autostop,
    },
    actions: d.actions.map((a) => ({
      kind: a.kind,
      machine_id: a.machineId,
      region: a.region,
      outcome: a.outcome || "pending",
      message: a.message,
    })),
  };
}
