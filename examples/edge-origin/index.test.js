// Run with `hangar edge test` (test, dispatch, deploy, after are its globals).
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";

const seen = [];
const server = createServer((req, res) => {
  seen.push({ method: req.method, path: req.url, headers: req.headers });
  res.writeHead(200, { "content-type": "text/plain", "x-origin": "yes" });
  res.end(`origin saw ${req.method} ${req.url}`);
}).listen(0, "127.0.0.1");
await once(server, "listening");
after(() => new Promise((resolve) => server.close(resolve)));
const host = `127.0.0.1:${server.address().port}`;
await deploy({ ORIGIN: `http://${host}`, FORCE_HTTPS: "true" });

test("a plain HTTP request is redirected to the same URL over https, and never reaches the origin", async () => {
  const res = await dispatch("http://shop.example.com/cart?id=7", {
    headers: { "x-forwarded-proto": "http" },
  });
  assert.equal(res.status, 301);
  assert.equal(res.headers.get("location"), "https://shop.example.com/cart?id=7");
  assert.equal(seen.length, 0);
});

test("an https request is proxied to the origin with its Host, X-Forwarded-Host and the app's header", async () => {
  const res = await dispatch("http://shop.example.com/cart?id=7", {
    method: "POST",
    headers: { "x-forwarded-proto": "https" },
    body: "item=3",
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-origin"), "yes");
  assert.equal(await res.text(), "origin saw POST /cart?id=7");
  const got = seen.at(-1);
  assert.equal(got.headers.host, host);
  assert.equal(got.headers["x-forwarded-host"], "shop.example.com");
  assert.equal(got.headers["x-forwarded-proto"], "https");
  assert.equal(got.headers["x-served-by"], "edge-origin");
});

test("with FORCE_HTTPS=false (as in development) plain HTTP is proxied", async () => {
  await deploy({ ORIGIN: `http://${host}`, FORCE_HTTPS: "false" });
  const res = await dispatch("http://localhost:3000/");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "origin saw GET /");
});
