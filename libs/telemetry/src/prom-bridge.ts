import { ValueType } from "@opentelemetry/api";
import { millisToHrTime } from "@opentelemetry/core";
import { emptyResource } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type CollectionResult,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";

/** One series as prom-client's `getMetricsAsJSON` gives it. */
export interface PromValue {
  value: number;
  labels: Record<string, string | number | undefined>;
  /** For a histogram's series: `<name>_bucket`, `_sum` or `_count`. */
  metricName?: string;
}

/** One metric as prom-client's `getMetricsAsJSON` gives it. */
export interface PromMetric {
  name: string;
  help: string;
  /** "counter", "gauge", "histogram" or "summary" at run time (prom-client's typings say a numeric enum). */
  type: unknown;
  values: PromValue[];
}

/** What the bridge reads: a prom-client Registry (structurally, so this lib needs no prom-client). */
export interface PromRegistryLike {
  getMetricsAsJSON(): Promise<PromMetric[]>;
}

type Attributes = Record<string, string | number>;

function attributesOf(labels: PromValue["labels"], without?: string): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined && k !== without) out[k] = v;
  return out;
}

/** Series of one histogram grouped by their labels (`le` aside), as OTel explicit-bucket points. */
function histogramPoints(
  m: PromMetric,
  startTime: DataPoint<Histogram>["startTime"],
  endTime: typeof startTime,
) {
  const series = new Map<
    string,
    { attributes: Attributes; buckets: [number, number][]; sum: number; count: number }
  >();
  for (const v of m.values) {
    const attributes = attributesOf(v.labels, "le");
    const key = JSON.stringify(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b)));
    let s = series.get(key);
    if (!s) {
      s = { attributes, buckets: [], sum: 0, count: 0 };
      series.set(key, s);
    }
    if (v.metricName === `${m.name}_bucket`) {
      const le = v.labels.le;
      if (le !== undefined && le !== "+Inf") s.buckets.push([Number(le), v.value]);
    } else if (v.metricName === `${m.name}_sum`) s.sum = v.value;
    else if (v.metricName === `${m.name}_count`) s.count = v.value;
  }
  return [...series.values()].map((s): DataPoint<Histogram> => {
    s.buckets.sort(([a], [b]) => a - b);
    // Prometheus buckets count everything up to their bound; OTel's count each bucket alone.
    const counts: number[] = [];
    let below = 0;
    for (const [, cumulative] of s.buckets) {
      counts.push(cumulative - below);
      below = cumulative;
    }
    counts.push(s.count - below);
    return {
      startTime,
      endTime,
      attributes: s.attributes,
      value: { buckets: { boundaries: s.buckets.map(([b]) => b), counts }, sum: s.sum, count: s.count },
    };
  });
}

/** The OTel form of one prom-client metric; undefined for a kind it does not carry (summaries). */
export function toMetricData(
  m: PromMetric,
  startTime: DataPoint<number>["startTime"],
  endTime: typeof startTime,
): MetricData | undefined {
  const descriptor = { name: m.name, description: m.help, unit: "", valueType: ValueType.DOUBLE };
  const points = () =>
    m.values.map(
      (v): DataPoint<number> => ({ startTime, endTime, attributes: attributesOf(v.labels), value: v.value }),
    );
  switch (String(m.type)) {
    case "counter":
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: points(),
      };
    case "gauge":
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: points(),
      };
    case "histogram":
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: histogramPoints(m, startTime, endTime),
      };
    default:
      return undefined;
  }
}

/**
 * A metric producer that hands an OTel metric reader everything a prom-client registry holds, so the
 * metrics a service serves on /metrics also go out over OTLP, with the same names and labels:
 * counters as monotonic cumulative sums, gauges as gauges, histograms as explicit-bucket histograms
 * (summaries are left out). Cumulative since `startMs`, the process's start.
 */
export function promMetricProducer(registry: PromRegistryLike, startMs: number = Date.now()): MetricProducer {
  const startTime = millisToHrTime(startMs);
  return {
    async collect(): Promise<CollectionResult> {
      const endTime = millisToHrTime(Date.now());
      const metrics = (await registry.getMetricsAsJSON())
        .map((m) => toMetricData(m, startTime, endTime))
        .filter((m): m is MetricData => m !== undefined);
      return {
        // The reader keeps its own resource (service.name and the rest); this one is not used.
        resourceMetrics: {
          resource: emptyResource(),
          scopeMetrics: [{ scope: { name: "prom-client" }, metrics }],
        },
        errors: [],
      };
    },
  };
}
