// A small Fastify app for the image corpus.
import Fastify from "fastify";

const app = Fastify();
app.get("/", async () => ({ app: "fastify", node: process.version }));
await app.listen({ port: Number(process.env.PORT ?? 3000), host: "0.0.0.0" });
