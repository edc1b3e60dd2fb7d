import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoOrigin, startEchoOrigin } from "../test/echo-origin.js";
import { balancer } from "./balancer.js";

let origins: EchoOrigin[];
beforeAll(async () => {
  origins = await Promise.all(["a", "b", "c"].map((name) => startEchoOrigin(name)));
});
afterAll(() => Promise.all(origins.map((o) => o.close())));

/** A backend that answers `status` and counts its requests. */
function fixed(status: number) {
  const backend = async (req: Request) => {
    backend.calls += 1;
    backend.bodies.push(await req.text());
    return new Response(`status ${status}`, { status });
  };
  backend.calls = 0;
  backend.bodies = [] as string[];
  return backend;
}

describe("balancer", () => {
  it("spreads requests over healthy origins (URLs go through proxy)", async () => {
    for (const o of origins) o.seen.length = 0;
    const lb = balancer(origins.map((o) => o.url));
    for (let i = 0; i < 60; i++) expect((await lb("http://site.test/x")).status).toBe(200);
    for (const o of origins) expect(o.seen.length).toBeGreaterThan(5);
    expect(lb.backends.map((b) => b.name)).toEqual(origins.map((o) => `${o.url}/`));
  });

  it("sends a request that got a 5xx or an error to another backend, body and all", async () => {
    const bad = fixed(503);
    const good = fixed(200);
    const refusing = async () => {
      throw new TypeError("fetch failed");
    };
    // With random() = 0 the first draw is backend 0, compared with backend 1: both healthy at first,
    // equal load, so the first drawn is taken.
    const lb = balancer([bad, refusing, good], { random: () => 0 });
    const res = await lb("http://site.test/", { method: "POST", body: "payload" });
    expect(res.status).toBe(200);
    expect(bad.calls).toBe(1);
    expect(good.bodies).toEqual(["payload"]);
    expect(lb.backends.map((b) => [b.requests, b.failures])).toEqual([
      [1, 1],
      [1, 1],
      [1, 0],
    ]);
  });

  it("answers the last 5xx when every backend failed, and 502 when none answered", async () => {
    const lb = balancer([fixed(500), fixed(502)]);
    expect([500, 502]).toContain((await lb("http://site.test/")).status);
    const down = balancer([
      async () => {
        throw new Error("connection refused");
      },
    ]);
    const res = await down("http://site.test/");
    expect(res.status).toBe(502);
    expect(await res.text()).toMatch(/connection refused/);
  });

  it("with retry: idempotent, a POST is not sent again but a GET is", async () => {
    const bad = fixed(500);
    const good = fixed(200);
    const lb = balancer([bad, good], { retry: "idempotent", random: () => 0 });
    expect((await lb("http://site.test/", { method: "POST", body: "x" })).status).toBe(500);
    expect(good.calls).toBe(0);
    expect((await lb("http://site.test/")).status).toBe(200);
  });

  it("avoids a backend whose recent requests failed, and tries it again once its failures have faded", async () => {
    let now = 0;
    const bad = fixed(500);
    const good = [fixed(200), fixed(200)];
    const lb = balancer([bad, ...good], { now: () => now, halfLifeMs: 1_000 });
    // Until bad has failed once it gets its share; after that, none while others are healthy.
    for (let i = 0; i < 30 && bad.calls === 0; i++) await lb("http://site.test/");
    expect(bad.calls).toBe(1);
    expect(lb.backends[0]?.health()).toBeLessThan(0.9);
    for (let i = 0; i < 100; i++) expect((await lb("http://site.test/")).status).toBe(200);
    expect(bad.calls).toBe(1);
    // 4 half-lives later its one failure weighs 1/16: healthy again, it is drawn again.
    now += 4_000;
    expect(lb.backends[0]?.health()).toBeGreaterThan(0.9);
    for (let i = 0; i < 30 && bad.calls === 1; i++) await lb("http://site.test/");
    expect(bad.calls).toBe(2);
  });

  it("one origin of three failing half its requests: under 1% of clients fail and its share falls", async () => {
    for (const o of origins) o.seen.length = 0;
    let n = 0;
    const flaky = origins[0] as EchoOrigin;
    flaky.status = () => (n++ % 2 === 0 ? 500 : 200);
    try {
      const lb = balancer(origins.map((o) => o.url));
      const statuses: number[] = [];
      const shares: number[] = [];
      for (const half of [0, 1]) {
        const before = flaky.seen.length;
        const all = origins.reduce((sum, o) => sum + o.seen.length, 0);
        for (let round = 0; round < 25; round++) {
          const batch = await Promise.all(
            Array.from({ length: 20 }, () => lb(`http://site.test/${half}`).then((r) => r.status)),
          );
          statuses.push(...batch);
        }
        const sent = origins.reduce((sum, o) => sum + o.seen.length, 0) - all;
        shares.push((flaky.seen.length - before) / sent);
      }
      const failed = statuses.filter((s) => s !== 200).length;
      expect(statuses).toHaveLength(1_000);
      expect(failed / statuses.length).toBeLessThan(0.01);
      expect(shares[1]).toBeLessThan(shares[0] as number);
    } finally {
      flaky.status = () => 200;
    }
  });
});
