// Latency the proxy adds: the same GETs straight to an upstream, then through the proxy.
//
//   node --conditions=source --import tsx services/proxy/test/latency.ts \
//     [--target http://127.0.0.1:9000/ --proxy http://127.0.0.1:8080/ --host app.localhost] [-n 20000] [-c 16]
//
// Without --target it starts its own upstream and proxy, each in a child process, so the load
// generator does not share their event loop. Prints a table, then one JSON line.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createProxy } from "../src/engine/mod.js";
import { type Measurement, measure } from "./load.js";

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    proxy: { type: "string" },
    host: { type: "string", default: "bench.localhost" },
    n: { type: "string", short: "n", default: "20000" },
    c: { type: "string", short: "c", default: "16" },
    serve: { type: "string" },
    backend: { type: "string" },
  },
});

if (values.serve === "upstream") {
  const body = Buffer.from("ok\n");
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
    res.end(body);
  });
  server.listen(0, "127.0.0.1", () => console.log((server.address() as AddressInfo).port));
} else if (values.serve === "proxy") {
  const route = {
    app: "bench",
    backends: [{ machineId: "m1", address: "127.0.0.1", port: Number(values.backend) }],
  };
  const { server } = createProxy({ routes: { lookup: (app) => (app === "bench" ? route : undefined) } });
  server.listen(0, "127.0.0.1", () => console.log((server.address() as AddressInfo).port));
} else {
  await compare();
}

async function compare(): Promise<void> {
  const children: ChildProcess[] = [];
  try {
    let target = values.target;
    let proxy = values.proxy;
    if (target === undefined) {
      const upstreamPort = await serve(children, ["--serve", "upstream"]);
      const proxyPort = await serve(children, ["--serve", "proxy", "--backend", upstreamPort]);
      target = `http://127.0.0.1:${upstreamPort}/`;
      proxy = `http://127.0.0.1:${proxyPort}/`;
    }
    if (proxy === undefined) throw new Error("--proxy is required with --target");
    const requests = Number(values.n);
    const concurrency = Number(values.c);
    const direct = await measure({ url: target, requests, concurrency });
    const proxied = await measure({ url: proxy, host: values.host, requests, concurrency });
    const row = (name: string, m: Measurement) =>
      `${name.padEnd(8)} ${m.rps.toFixed(0).padStart(8)} ${m.p50Ms.toFixed(3).padStart(9)} ${m.p99Ms.toFixed(3).padStart(9)}`;
    console.log(`${requests} GETs at concurrency ${concurrency}, keep-alive\n`);
    console.log(`${"".padEnd(8)} ${"req/s".padStart(8)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)}`);
    console.log(row("direct", direct));
    console.log(row("proxied", proxied));
    const added = { p50Ms: proxied.p50Ms - direct.p50Ms, p99Ms: proxied.p99Ms - direct.p99Ms };
    console.log(`\nadded by the proxy: p50 ${added.p50Ms.toFixed(3)} ms, p99 ${added.p99Ms.toFixed(3)} ms`);
    console.log(JSON.stringify({ requests, concurrency, direct, proxied, added }));
  } finally {
    for (const child of children) child.kill();
  }
}

// Starts this script in a child process in the given role and returns the port it prints.
async function serve(children: ChildProcess[], args: string[]): Promise<string> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`))),
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = new Promise<string>((resolve) => lines.once("line", resolve));
  return Promise.race([port, exited]);
}
