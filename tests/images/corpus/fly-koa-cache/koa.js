// A small Koa app for the image corpus.
import Koa from "koa";

const app = new Koa();
app.use((ctx) => {
  ctx.body = { app: "koa", node: process.version };
});
app.listen(Number(process.env.PORT ?? 3000), "0.0.0.0");
