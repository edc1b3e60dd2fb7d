// The Express app of issue 14's acceptance 1: says which user it runs as, so a test can check that
// the Dockerfile's `USER app` holds in the machine, and which Express answered.
import { userInfo } from "node:os";
import express from "express";
import expressPackage from "express/package.json" with { type: "json" };

const app = express();
const port = Number(process.env.PORT ?? 8080);

app.get("/", (_req, res) => {
  res.json({
    app: "express-issue",
    express: expressPackage.version,
    uid: process.getuid(),
    user: userInfo().username,
  });
});

app.listen(port, "0.0.0.0", () => console.log(`express-issue listening on ${port}`));
