// `pnpm dashboards`: writes Hangar's Grafana dashboards (scripts/grafana-dashboards.ts) to
// deploy/k8s/base/grafana/dashboards/, one JSON file each. Commit the result.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DASHBOARDS_DIR, dashboardJson, dashboards } from "./grafana-dashboards.js";

await mkdir(DASHBOARDS_DIR, { recursive: true });
for (const [file, dashboard] of Object.entries(dashboards())) {
  await writeFile(join(DASHBOARDS_DIR, file), dashboardJson(file, dashboard));
  process.stdout.write(`wrote ${join(DASHBOARDS_DIR, file)}\n`);
}
