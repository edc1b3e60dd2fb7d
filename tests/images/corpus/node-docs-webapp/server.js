// The web app of the Node.js guide's shape: Express answering "Hello World" on port 8080.
"use strict";

const express = require("express");

const app = express();
app.get("/", (_req, res) => res.send("Hello World"));
app.listen(8080, "0.0.0.0", () => console.log("Running on http://0.0.0.0:8080"));
