import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  DASHBOARDS_DIR,
  dashboardJson,
  dashboards,
  PROMETHEUS,
  platformDashboard,
  promQueries,
  TEMPO,
} from "../../scripts/grafana-dashboards.js";

describe("the Grafana dashboards", () => {
  it("are committed as the code generates them (run `pnpm dashboards` after changing scripts/grafana-dashboards.ts)", () => {
    const generated = dashboards();
    expect(readdirSync(DASHBOARDS_DIR).sort()).toEqual(Object.keys(generated).sort());
    for (const [file, dashboard] of Object.entries(generated))
      expect(readFileSync(join(DASHBOARDS_DIR, file), "utf8"), file).toBe(dashboardJson(file, dashboard));
  });

  it("have the panels the platform's operators need, an app variable and a trace view", () => {
    const d = platformDashboard();
    const titles = (d.panels ?? []).map((p) => p.title);
    for (const title of [
      "Machines by state",
      "Starts and failures",
      "Create to started",
      "Proxy requests per second",
      "Proxy latency",
      "Autoscaler decisions",
      "NATS consumer lag",
      "Build times",
      "Traces of $service",
    ])
      expect(titles).toContain(title);
    expect(d.templating?.list?.map((v) => v.name)).toEqual(["app", "service"]);
    const traces = (d.panels ?? []).find((p) => p.title === "Traces of $service");
    const target =
      traces && "targets" in traces ? (traces.targets?.[0] as { datasource?: unknown }) : undefined;
    expect(target?.datasource).toEqual(TEMPO);
  });

  it("query Prometheus with every per-app panel narrowed to $app", () => {
    const queries = promQueries(platformDashboard());
    expect(queries.length).toBeGreaterThanOrEqual(12);
    // Only the NATS consumers and the build steps (no app label on either) are platform-wide.
    const platformWide = queries.filter((q) => !q.expr.includes('app="$app"'));
    expect(platformWide.map((q) => q.panel)).toEqual([
      "NATS consumer lag",
      "NATS consumer lag",
      "Build times",
    ]);
    for (const panel of platformDashboard().panels ?? []) {
      if (panel.type === "timeseries") expect(panel.datasource, panel.title).toEqual(PROMETHEUS);
    }
  });
});
