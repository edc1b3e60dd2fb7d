// Run with `hangar edge test` (test, dispatch, deploy, after are its globals). The three origins are
// HTTP servers started here on free ports; the app reaches them through the test's env.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";

/** An origin that answers its name, the path it got and its Host and X-Forwarded-Host as JSON. */
async function origin(name) {
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        name,
        path: req.url,
        host: req.headers.host,
        forwardedHost: req.headers["x-forwarded-host"],
      }),
    );
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  after(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${server.address().port}`, host: `127.0.0.1:${server.address().port}` };
}

const blog = await origin("blog");
const docs = await origin("docs");
const site = await origin("static");
await deploy({ BLOG_ORIGIN: blog.url, DOCS_ORIGIN: docs.url, STATIC_ORIGIN: site.url });

async function get(path) {
  const res = await dispatch(`http://www.example.com${path}`);
  assert.equal(res.status, 200);
  return res.json();
}

test("/blog goes to the blog without its mount path, Host the blog's, X-Forwarded-Host the client's", async () => {
  const seen = await get("/blog/2024/hello?draft=1");
  assert.deepEqual(seen, {
    name: "blog",
    path: "/2024/hello?draft=1",
    host: blog.host,
    forwardedHost: "www.example.com",
  });
  assert.equal((await get("/blog")).path, "/");
});

test("/docs goes to the docs", async () => {
  assert.deepEqual(await get("/docs/api"), {
    name: "docs",
    path: "/api",
    host: docs.host,
    forwardedHost: "www.example.com",
  });
});

test("everything else goes to the static site, path whole (/blogger is not /blog)", async () => {
  assert.equal((await get("/")).name, "static");
  assert.deepEqual(await get("/blogger/about.html"), {
    name: "static",
    path: "/blogger/about.html",
    host: site.host,
    forwardedHost: "www.example.com",
  });
});
