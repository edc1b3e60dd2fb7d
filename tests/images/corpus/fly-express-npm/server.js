// A small Express app for the image corpus: answers with its name and Node's version.
import express from "express";

const app = express();
app.get("/", (_req, res) => res.json({ app: process.env.npm_package_name ?? "corpus", node: process.version }));
app.listen(Number(process.env.PORT ?? 3000), "0.0.0.0");
