import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { poll } from "./poll.js";
import { type PrometheusServer, startPrometheus } from "./prometheus.js";

let exporter: Server;
let prometheus: PrometheusServer;

beforeAll(async () => {
  exporter = createServer((_req, res) => {
    res.setHeader("content-type", "text/plain; version=0.0.4");
    res.end('probe_requests_total{app="one"} 3\n');
  });
  await new Promise<void>((resolve) => exporter.listen(0, "127.0.0.1", resolve));
  const { port } = exporter.address() as AddressInfo;
  prometheus = await startPrometheus({ jobs: { probe: [`127.0.0.1:${port}`], gone: ["127.0.0.1:1"] } });
});
afterAll(async () => {
  await prometheus?.stop();
  exporter?.close();
});

describe("startPrometheus", () => {
  it("scrapes its jobs and answers PromQL; an unreachable target is down, a bad query refused", async () => {
    const series = await poll(
      async () => {
        const s = await prometheus.query('probe_requests_total{app="one"}');
        return s.length > 0 ? s : undefined;
      },
      { what: "the probe's series", timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(series).toEqual([{ metric: expect.objectContaining({ app: "one", job: "probe" }), value: "3" }]);
    expect(await prometheus.query('probe_requests_total{app="two"}')).toEqual([]);
    const targets = await poll(
      async () => {
        const t = await prometheus.targets();
        return t.every((x) => x.health !== "unknown") ? t : undefined;
      },
      { what: "both targets scraped", timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(targets.find((t) => t.job === "probe")?.health).toBe("up");
    expect(targets.find((t) => t.job === "gone")?.health).toBe("down");
    await expect(prometheus.query("sum(")).rejects.toThrow(/parse error/);
  });
});
