// An in-process OTLP/HTTP receiver for tests: it takes the JSON encoding of OTLP (the services and the
// CLI are told OTEL_EXPORTER_OTLP_PROTOCOL=http/json) on /v1/traces and /v1/metrics, and keeps what
// it got, flattened: each span and each metric with the service.name of the resource that sent it.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One received span; ids are hex as OTLP/JSON writes them, `parentSpanId` "" for a root. */
export interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  kind: number;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  attributes: Record<string, string | number | boolean>;
}

/** One received metric (its data points are not kept, only that it came and from whom). */
export interface ReceivedMetric {
  service: string;
  name: string;
}

export interface OtlpReceiver {
  /** The base URL to give as OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  /** The environment that points a service or the CLI here (JSON encoding, quick batches). */
  env(): Record<string, string>;
  spans(): ReceivedSpan[];
  metrics(): ReceivedMetric[];
  /** Requests it could not decode (wrong path, not JSON): a test should expect none. */
  rejected(): string[];
  close(): Promise<void>;
}

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}
interface OtlpResource {
  attributes?: OtlpKeyValue[];
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  status?: { code?: number };
  attributes?: OtlpKeyValue[];
}

function anyValue(v: OtlpAnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue ?? "";
}

function attributesOf(list: OtlpKeyValue[] = []): Record<string, string | number | boolean> {
  return Object.fromEntries(list.map((a) => [a.key, anyValue(a.value)]));
}

function serviceOf(resource: OtlpResource | undefined): string {
  return String(attributesOf(resource?.attributes)["service.name"] ?? "");
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Starts the receiver on a free port of 127.0.0.1. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetric[] = [];
  const rejected: string[] = [];
  const server: Server = createServer((req, res) => {
    void bodyOf(req).then((text) => {
      try {
        const body = JSON.parse(text);
        if (req.url === "/v1/traces") {
          for (const rs of body.resourceSpans ?? []) {
            const service = serviceOf(rs.resource);
            for (const ss of rs.scopeSpans ?? []) {
              for (const s of (ss.spans ?? []) as OtlpSpan[]) {
                spans.push({
                  service,
                  name: s.name,
                  traceId: s.traceId,
                  spanId: s.spanId,
                  parentSpanId: s.parentSpanId ?? "",
                  kind: s.kind ?? 0,
                  statusCode: s.status?.code ?? 0,
                  attributes: attributesOf(s.attributes),
                });
              }
            }
          }
        } else if (req.url === "/v1/metrics") {
          for (const rm of body.resourceMetrics ?? []) {
            const service = serviceOf(rm.resource);
            for (const sm of rm.scopeMetrics ?? []) {
              for (const m of sm.metrics ?? []) metrics.push({ service, name: m.name });
            }
          }
        } else throw new Error(`unknown path ${req.url}`);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch (err) {
        rejected.push(`${req.method} ${req.url} ${req.headers["content-type"]}: ${(err as Error).message}`);
        res.writeHead(400, { "content-type": "application/json" }).end("{}");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    env: () => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      // Batches every half second, metrics every 5 s: a test need not wait the 5 s and 60 s defaults.
      OTEL_BSP_SCHEDULE_DELAY: "500",
      OTEL_METRIC_EXPORT_INTERVAL: "5000",
    }),
    spans: () => [...spans],
    metrics: () => [...metrics],
    rejected: () => [...rejected],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
