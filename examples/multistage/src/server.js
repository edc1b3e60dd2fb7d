// The runtime stage runs only dist/server.js: src/, node_modules and the build tool stay in the build stage.
import { existsSync } from "node:fs";
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 8080);
const machine = process.env.FLY_MACHINE_ID ?? "local";
const message = "multistage v1";

createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    return;
  }
  const body = JSON.stringify({
    message,
    machine_id: machine,
    // BUILT is prepended by the build stage's tool; the dev tool itself must not be in the image.
    built: typeof BUILT === "string" ? BUILT : null,
    dev_tool_in_image: existsSync("/app/node_modules/stamp-banner"),
  });
  res.writeHead(200, { "content-type": "application/json" }).end(body);
}).listen(port, "0.0.0.0", () => console.log(`multistage listening on ${port}`));

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
