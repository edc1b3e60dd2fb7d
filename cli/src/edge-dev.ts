/**
 * `hangar edge dev`: the app served on a local port by the same runtime, with the same limits, as the
 * proxies run it; the bundle is made again and loaded on every change in the app's folder. A change
 * that does not build (or load) is reported and the last good bundle keeps serving.
 */
import { once } from "node:events";
import { type FSWatcher, watch } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { EDGE_BODY_MAX_BYTES, type EdgeHttpRequest, type EdgeRuntime } from "@hangar/edge";
import { bundleApp, type EdgeAppDir } from "./edge-app.js";
import { dispatchOrError } from "./edge-http.js";

/** How long the dev server waits after a change for the next one before it rebuilds (an editor writes in bursts). */
const DEBOUNCE_MS = 100;
/** Folders whose changes never touch the bundle. */
const IGNORED = /(^|\/)(node_modules|\.git)(\/|$)/;

async function readRequest(req: IncomingMessage): Promise<EdgeHttpRequest> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).byteLength;
    if (total > EDGE_BODY_MAX_BYTES)
      throw new RangeError(`the request body is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.push([(req.rawHeaders[i] as string).toLowerCase(), req.rawHeaders[i + 1] as string]);
  }
  const host = req.headers.host ?? "localhost";
  const body = total > 0 ? new Uint8Array(Buffer.concat(chunks)) : undefined;
  return {
    method: req.method ?? "GET",
    url: `http://${host}${req.url ?? "/"}`,
    headers,
    ...(body ? { body } : {}),
  };
}

/** Headers node:http sets itself from the body it writes. */
const FRAMING = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"]);

export interface EdgeDevServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export interface EdgeDevOptions {
  app: EdgeAppDir;
  runtime: EdgeRuntime;
  port: number;
  bind: string;
  /** Progress and the app's console lines. */
  out(text: string): void;
  /** Build and load errors. */
  err(text: string): void;
}

/** Builds and loads the app; false (the error printed) when it did not build or load. */
async function reload(options: EdgeDevOptions): Promise<boolean> {
  const { app, runtime } = options;
  try {
    const { bundle, warnings } = await bundleApp(app);
    for (const warning of warnings) options.err(`warning: ${warning}\n`);
    if (runtime.current(app.app) === bundle.digest) return true;
    await runtime.deploy(app.app, bundle, { appEnv: "development", vars: app.vars }, app.limits);
    options.out(`Loaded ${app.app} (${bundle.digest.slice(0, 19)})\n`);
    return true;
  } catch (err) {
    const serving = runtime.current(app.app);
    options.err(
      `${(err as Error).message}\n${serving ? `still serving the last good bundle (${serving.slice(0, 19)})\n` : ""}`,
    );
    return false;
  }
}

/** Serves the app until close(); throws when the first bundle does not build or the port cannot be bound. */
export async function startEdgeDev(options: EdgeDevOptions): Promise<EdgeDevServer> {
  const { app, runtime } = options;
  if (!(await reload(options)))
    throw new Error(`${app.app} did not build or load: fix it and run hangar edge dev again`);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    readRequest(req)
      .then((edgeReq) => dispatchOrError(runtime, app.app, edgeReq))
      .then(
        (answer) => {
          // node:http takes repeated headers (set-cookie) as one flat list of names and values.
          const headers = answer.headers.filter(([name]) => !FRAMING.has(name.toLowerCase())).flat();
          headers.push("content-length", String(answer.body.byteLength));
          try {
            if (answer.statusText) res.writeHead(answer.status, answer.statusText, headers);
            else res.writeHead(answer.status, headers);
          } catch (err) {
            // A header or status text node refuses (a newline in a value): the app's fault, said so.
            options.err(
              `${req.method} ${req.url}: the app's response cannot be sent: ${(err as Error).message}\n`,
            );
            res.writeHead(502, { "content-type": "text/plain" });
            res.end(`the app's response cannot be sent: ${(err as Error).message}\n`);
            return;
          }
          res.end(answer.body);
        },
        (err: unknown) => {
          options.err(`${req.method} ${req.url}: ${(err as Error).message}\n`);
          if (!res.headersSent)
            res.writeHead(err instanceof RangeError ? 413 : 500, { "content-type": "text/plain" });
          res.end(`${(err as Error).message}\n`);
        },
      );
  });
  server.listen(options.port, options.bind);
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([err]) => {
      throw new Error(`cannot listen on ${options.bind}:${options.port}: ${(err as Error).message}`);
    }),
  ]);

  let timer: NodeJS.Timeout | undefined;
  let building: Promise<unknown> = Promise.resolve();
  const watcher: FSWatcher = watch(app.dir, { recursive: true }, (_event, file) => {
    if (file && IGNORED.test(file)) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      building = building.then(() => reload(options));
    }, DEBOUNCE_MS);
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      watcher.close();
      clearTimeout(timer);
      await building;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
