// Hangar's Grafana dashboards as code (@grafana/grafana-foundation-sdk): `pnpm dashboards` writes them to
// deploy/k8s/base/grafana/dashboards/, tests/observability/dashboards.test.ts checks the committed files
// are what this module makes, and tests/observability/prometheus.ts runs every PromQL query of them
// against a real Prometheus scraping a whole platform.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DataSourceRef } from "@grafana/grafana-foundation-sdk/common";
import {
  CustomVariableBuilder,
  type Dashboard,
  DashboardBuilder,
  DashboardLinkBuilder,
  DashboardLinkType,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder as PromQuery } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as TablePanel } from "@grafana/grafana-foundation-sdk/table";
import { DataqueryBuilder as TempoQuery } from "@grafana/grafana-foundation-sdk/tempo";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import { formatMarkdown } from "./format-markdown.js";

/** Where the generated dashboards live (the Grafana ConfigMap of deploy/k8s is made from them). */
export const DASHBOARDS_DIR = join(
  fileURLToPath(new URL("..", import.meta.url)),
  "deploy/k8s/base/grafana/dashboards",
);

/** The data sources the dashboards name, by the uids deploy/k8s/base/grafana provisions them with. */
export const PROMETHEUS: DataSourceRef = { type: "prometheus", uid: "hangar-prometheus" };
export const TEMPO: DataSourceRef = { type: "tempo", uid: "hangar-tempo" };

/** The OpenTelemetry service.name of each service (`hangar-<service>`, libs/service's runService). */
const TRACED_SERVICES = [
  "hangar-cli",
  "hangar-gateway",
  "hangar-builder",
  "hangar-placement",
  "hangar-host-agent",
  "hangar-proxy",
  "hangar-scheduler",
  "hangar-volume",
  "hangar-postgres-manager",
  "hangar-monitor",
];

/** One PromQL query of a panel: `legend` names each series (Grafana's legendFormat). */
interface Query {
  expr: string;
  legend: string;
}

/** A time series panel of PromQL queries, `unit` in Grafana's unit names. */
function graph(title: string, description: string, unit: string, queries: Query[]): TimeseriesPanel {
  const panel = new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(PROMETHEUS)
    .unit(unit)
    .height(8)
    .span(12);
  queries.forEach((q, i) => {
    panel.withTarget(
      new PromQuery()
        .datasource(PROMETHEUS)
        .refId(String.fromCharCode(65 + i))
        .expr(q.expr)
        .legendFormat(q.legend),
    );
  });
  return panel;
}

/** p50 and p99 of a histogram's `_bucket` series matching `selector`, over Grafana's rate interval. */
function quantiles(metric: string, selector: string, by = ""): Query[] {
  const group = by ? `le, ${by}` : "le";
  const prefix = by ? `{{${by}}} ` : "";
  return [0.5, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${group}) (rate(${metric}_bucket${selector}[$__rate_interval])))`,
    legend: `${prefix}p${q * 100}`,
  }));
}

const APP = '{app="$app"}';
/**
 * The monitor runs as several replicas (docs/architecture.md, "Replicas"), each exporting the same
 * series from its fold of MACHINES, told apart only by the scrape's labels: keep one of each.
 */
const ONE_MONITOR = "max without (instance, pod, kubernetes_pod_name) ";

/** The platform dashboard: machines, proxy, autoscaler, NATS, builds for one app, and traces. */
export function platformDashboard(): Dashboard {
  return new DashboardBuilder("Hangar platform")
    .uid("hangar-platform")
    .description("Machines, edge proxy, autoscaler, NATS consumers, builds and traces of a Hangar platform")
    .tags(["hangar"])
    .editable()
    .refresh("30s")
    .time({ from: "now-1h", to: "now" })
    .withVariable(
      new QueryVariableBuilder("app")
        .label("App")
        .datasource(PROMETHEUS)
        .query("label_values(hangar_machines, app)")
        .definition("label_values(hangar_machines, app)")
        .refresh(VariableRefresh.OnTimeRangeChanged),
    )
    .withVariable(
      new CustomVariableBuilder("service")
        .label("Traced service")
        .values(TRACED_SERVICES.join(","))
        .current({ text: "hangar-gateway", value: "hangar-gateway" }),
    )
    .link(
      new DashboardLinkBuilder("Explore traces in Tempo")
        .type(DashboardLinkType.Link)
        .url(
          `/explore?left=${encodeURIComponent(
            JSON.stringify({
              datasource: TEMPO.uid,
              queries: [{ refId: "A", queryType: "traceql", query: '{resource.service.name="$service"}' }],
            }),
          )}`,
        )
        .targetBlank(true),
    )
    .withRow(new RowBuilder("Machines of $app"))
    .withPanel(
      graph("Machines by state", "hangar_machines from the monitor (the MACHINES stream's fold)", "short", [
        // Every monitor replica folds the whole stream and exports the same series: one copy each.
        { expr: `sum by (state) (${ONE_MONITOR}(hangar_machines${APP}))`, legend: "{{state}}" },
      ]),
    )
    .withPanel(
      graph(
        "Starts and failures",
        "Machine starts by result (failed: the host agent could not start it), and state changes into started or stopped",
        "short",
        [
          {
            expr: `sum by (result) (${ONE_MONITOR}(increase(hangar_machine_starts_total${APP}[$__rate_interval])))`,
            legend: "start {{result}}",
          },
          {
            expr: `sum by (to) (${ONE_MONITOR}(increase(hangar_machine_transitions_total{app="$app", to=~"started|stopped"}[$__rate_interval])))`,
            legend: "to {{to}}",
          },
        ],
      ),
    )
    .withPanel(
      graph(
        "Create to started",
        "From a machine's creation to its first start (event times), p50 and p99",
        "s",
        quantiles("hangar_machine_create_to_started_seconds", APP),
      ),
    )
    .withRow(new RowBuilder("Edge proxy"))
    .withPanel(
      graph(
        "Proxy requests per second",
        "Requests the edge proxy answered for $app, by status class",
        "reqps",
        [
          {
            expr: `sum by (status_class) (rate(hangar_proxy_requests_total${APP}[$__rate_interval]))`,
            legend: "{{status_class}}",
          },
        ],
      ),
    )
    .withPanel(
      graph(
        "Proxy latency",
        "A request's whole time in the proxy (held and retried time included), p50 and p99 by status class",
        "s",
        quantiles("hangar_proxy_request_duration_seconds", APP, "status_class"),
      ),
    )
    .withRow(new RowBuilder("Autoscaler"))
    .withPanel(
      graph(
        "Autoscaler decisions",
        "Scaling decisions recorded for $app, by direction and reason (hangar status -a <app> shows each one)",
        "short",
        [
          {
            expr: `sum by (direction, reason) (increase(hangar_scheduler_decisions_total${APP}[$__rate_interval]))`,
            legend: "{{direction}} ({{reason}})",
          },
        ],
      ),
    )
    .withPanel(
      graph(
        "Desired machines and concurrency",
        "Machines the autoscaler wants running, and the app's concurrency over the panic and stable windows",
        "short",
        [
          { expr: `max(hangar_scheduler_desired_machines${APP})`, legend: "desired" },
          {
            expr: `max by (window) (hangar_scheduler_concurrency${APP})`,
            legend: "concurrency ({{window}})",
          },
        ],
      ),
    )
    .withRow(new RowBuilder("NATS and builds"))
    .withPanel(
      graph(
        "NATS consumer lag",
        "Durable JetStream consumers (projections, webhooks, subscribers): messages not delivered yet and delivered but not acknowledged",
        "short",
        [
          {
            expr: "max by (stream, consumer) (hangar_nats_consumer_pending_messages)",
            legend: "{{stream}}/{{consumer}} pending",
          },
          {
            expr: "max by (stream, consumer) (hangar_nats_consumer_ack_pending_messages)",
            legend: "{{stream}}/{{consumer}} unacknowledged",
          },
        ],
      ),
    )
    .withPanel(
      graph(
        "Build times",
        "Builds of $app: the mean time of the builds each builder finished, by outcome, and the p99 of build steps by kind (all apps)",
        "s",
        [
          {
            expr: `sum by (outcome) (hangar_build_duration_seconds_sum${APP}) / sum by (outcome) (hangar_build_duration_seconds_count${APP})`,
            legend: "mean {{outcome}}",
          },
          {
            expr: "histogram_quantile(0.99, sum by (le, kind) (rate(hangar_build_step_duration_seconds_bucket[$__rate_interval])))",
            legend: "step {{kind}} p99",
          },
        ],
      ),
    )
    .withRow(new RowBuilder("Traces"))
    .withPanel(
      new TablePanel()
        .title("Traces of $service")
        .description(
          "The newest traces with a span of the chosen service (Tempo, TraceQL); a trace id opens the whole trace",
        )
        .datasource(TEMPO)
        .height(10)
        .span(24)
        .withTarget(
          new TempoQuery()
            .datasource(TEMPO)
            .refId("A")
            .queryType("traceql")
            .query('{resource.service.name="$service"}')
            .limit(20),
        ),
    )
    .build();
}

/** Every dashboard, by its file name in DASHBOARDS_DIR. */
export function dashboards(): Record<string, Dashboard> {
  return { "hangar-platform.json": platformDashboard() };
}

/** The text of dashboard file `file`: its JSON as biome formats it (biome checks JSON in `npm test`). */
export function dashboardJson(file: string, dashboard: Dashboard): string {
  return formatMarkdown(JSON.stringify(dashboard), join(DASHBOARDS_DIR, file));
}

/** One PromQL query of a dashboard, with where it is. */
export interface DashboardQuery {
  panel: string;
  refId: string;
  expr: string;
}

/** Every Prometheus query of a dashboard's panels (as Grafana would run them, before variables are substituted). */
export function promQueries(dashboard: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const panel of dashboard.panels ?? []) {
    if (!("targets" in panel)) continue;
    for (const target of panel.targets ?? []) {
      const t = target as { datasource?: DataSourceRef; expr?: string; refId?: string };
      const type = t.datasource?.type ?? panel.datasource?.type;
      if (type === "prometheus" && t.expr)
        out.push({ panel: panel.title ?? "", refId: t.refId ?? "", expr: t.expr });
    }
  }
  return out;
}
