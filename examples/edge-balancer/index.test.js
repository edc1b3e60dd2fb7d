// Run with `hangar edge test` (test, dispatch, deploy, after are its globals). Three origins on free
// ports; in the last test one of them fails half its requests while 2,000 requests arrive 20 at a time.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";

/** An origin that counts its requests and fails those `fail` picks with a 500. */
async function origin(name) {
  const o = { name, requests: 0, fail: () => false };
  const server = createServer((req, res) => {
    o.requests += 1;
    const failed = o.fail();
    res.writeHead(failed ? 500 : 200, { "content-type": "text/plain" });
    res.end(failed ? `${name} failed\n` : `${name} ${req.method} ${req.url}\n`);
  }).listen(0, "127.0.0.1");
  await once(server, "listening");
  after(() => new Promise((resolve) => server.close(resolve)));
  o.url = `http://127.0.0.1:${server.address().port}`;
  return o;
}

const origins = [await origin("a"), await origin("b"), await origin("c")];
const total = () => origins.reduce((sum, o) => sum + o.requests, 0);
await deploy({ ORIGINS: origins.map((o) => o.url).join(",") });

test("spreads requests over three healthy origins", async () => {
  const before = origins.map((o) => o.requests);
  for (let i = 0; i < 60; i++) {
    const res = await dispatch(`http://lb.example.com/item/${i}`);
    assert.equal(res.status, 200, await res.text());
  }
  for (const [i, o] of origins.entries()) {
    assert.ok(o.requests - before[i] >= 5, `${o.name} got ${o.requests - before[i]} of 60`);
  }
});

test("a request an origin answers with a 500 is retried on another, POST body and all", async () => {
  origins[0].fail = () => true;
  origins[1].fail = () => true;
  try {
    const res = await dispatch("http://lb.example.com/orders", { method: "POST", body: "qty=2" });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "c POST /orders\n");
  } finally {
    origins[0].fail = () => false;
    origins[1].fail = () => false;
  }
});

test("one origin of three failing 50%: under 1% of 2,000 requests fail and its share falls", async () => {
  // A fresh balancer: no memory of the test above.
  await deploy({ ORIGINS: origins.map((o) => o.url).join(",") });
  let n = 0;
  const flaky = origins[1];
  flaky.fail = () => n++ % 2 === 0;
  try {
    let failed = 0;
    const shares = [];
    for (let half = 0; half < 2; half++) {
      const [flakyBefore, allBefore] = [flaky.requests, total()];
      for (let round = 0; round < 50; round++) {
        const batch = await Promise.all(
          Array.from({ length: 20 }, (_, i) => dispatch(`http://lb.example.com/r/${half}/${round}/${i}`)),
        );
        for (const res of batch) if (res.status !== 200) failed += 1;
      }
      shares.push((flaky.requests - flakyBefore) / (total() - allBefore));
    }
    const stats = await (await dispatch("http://lb.example.com/_balancer")).json();
    console.log(
      `failed ${failed}/2000; flaky origin's share ${shares.map((s) => (100 * s).toFixed(1)).join("% then ")}%;`,
      JSON.stringify(stats),
    );
    assert.ok(failed / 2000 < 0.01, `${failed} of 2000 client requests failed`);
    assert.ok(shares[1] < shares[0], `the flaky origin's share went from ${shares[0]} to ${shares[1]}`);
    assert.ok(shares[1] < 1 / 3, `the flaky origin kept a third of the requests (${shares[1]})`);
  } finally {
    flaky.fail = () => false;
  }
});
