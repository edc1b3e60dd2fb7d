// One HTTP server for `pnpm bench edge-runtime` (run as its own process with --no-node-snapshot):
// mode "edge" answers every request with the edge app given as the second argument (its code), run by
// @hangar/edge's EdgeRuntime (the request crosses into the app's isolate and back, as in the proxy);
// mode "node" answers "Hello World" straight from Node. Prints its port on stdout once listening.
import { createServer } from "node:http";
import { EdgeRuntime, edgeBundleOf, MemoryEdgeHost } from "@hangar/edge";

const [mode, code] = process.argv.slice(2);
if (mode !== "node" && (mode !== "edge" || code === undefined))
  throw new Error("usage: edge-runtime-server.ts node | edge <the app's code>");
const runtime = new EdgeRuntime(new MemoryEdgeHost());
if (code !== undefined) await runtime.deploy("hello", edgeBundleOf(code), { appEnv: "production", vars: {} });

const server = createServer((req, res) => {
  if (mode === "node") {
    res.writeHead(200, { "content-type": "text/plain;charset=UTF-8" }).end("Hello World");
    return;
  }
  const headers: [string, string][] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    headers.push([(req.rawHeaders[i] as string).toLowerCase(), req.rawHeaders[i + 1] as string]);
  runtime
    .dispatch("hello", { method: req.method ?? "GET", url: `http://${req.headers.host}${req.url}`, headers })
    .then(
      (answer) => {
        res.writeHead(answer.status, answer.headers.flat()).end(answer.body);
      },
      (error: Error) => {
        res.writeHead(500).end(error.message);
      },
    );
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (typeof address === "object" && address !== null) process.stdout.write(`${address.port}\n`);
});
