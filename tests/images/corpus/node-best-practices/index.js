// An app run as the image's non-root `node` user, as docker-node's best practices advise.
"use strict";

const http = require("node:http");
const ms = require("ms");

const started = Date.now();
http
  .createServer((_req, res) => res.end(`up ${ms(Date.now() - started)} as uid ${process.getuid()}\n`))
  .listen(3000, "0.0.0.0");
