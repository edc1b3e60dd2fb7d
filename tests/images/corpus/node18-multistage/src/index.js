// A small app on Node 18, its production dependencies installed in a stage of their own.
"use strict";

const http = require("node:http");
const { v4: uuid } = require("uuid");

http.createServer((_req, res) => res.end(`${uuid()}\n`)).listen(3000, "0.0.0.0");
