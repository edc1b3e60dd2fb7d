// A small TypeScript HTTP app for the image corpus: compiled by `npm run build` (tsc) in the build stage.
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 3000);
createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ app: "typescript", node: process.version }));
}).listen(port, "0.0.0.0");
