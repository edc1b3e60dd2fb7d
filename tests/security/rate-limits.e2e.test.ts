// Issue 13, acceptance 4: rate limits per org and action on the whole platform. An org whose
// machine_create budget is 2 per period gets 429 with Retry-After on its third create; honouring
// Retry-After, the create succeeds. Another org's creates at the same moment succeed. Two gateway
// replicas on one NATS spend one budget: what one admitted, the other refuses.
//
// The platform's period is 4 s (HANGAR_GATEWAY_RATE_LIMIT_PERIOD) instead of a minute, so a budget
// of 2 refills one call every 2 s and the test waits seconds, not half a minute.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GatewayHandle } from "../../scripts/platform.js";
import { helloConfig, startTestPlatform, type TestPlatform } from "../platform/harness.js";

const PERIOD = "4s";
const BUDGET = 2;

let p: TestPlatform;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { error?: string; status?: string; id?: string };
}

/** POST a machine of `app` through the gateway at `apiUrl` with `token`; the answer with its Retry-After. */
async function createMachine(apiUrl: string, token: string, app: string): Promise<Answer> {
  const res = await fetch(`${apiUrl}/v1/apps/${app}/machines`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ config: helloConfig(), skip_launch: true }),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get("retry-after"),
    body: (await res.json()) as Answer["body"],
  };
}

/** Creates org `slug` with its app `app` and machine_create budget; the org admin's token. */
async function orgWithApp(slug: string, app: string, budget?: number): Promise<string> {
  const { token } = await p.api.ok<{ token: string }>("POST", "/orgs", { slug });
  if (budget !== undefined)
    await p.api.ok("PUT", `/orgs/${slug}/limits`, { limits: { machine_create: budget } });
  const res = await p.api.call("POST", "/apps", { app_name: app, org_slug: slug }, { token });
  expect(res.status).toBe(201);
  return token;
}

beforeAll(async () => {
  p = await startTestPlatform({ env: { gateway: { HANGAR_GATEWAY_RATE_LIMIT_PERIOD: PERIOD } } });
}, 180_000);

afterAll(async () => {
  await p?.close();
});

describe("rate limits per org", () => {
  it("creates beyond the budget get 429 + Retry-After, honouring it succeeds, and another org is not held back", async () => {
    const x = await orgWithApp("rl-org-x", "rl-x", BUDGET);
    const y = await orgWithApp("rl-org-y", "rl-y");
    for (let i = 0; i < BUDGET; i++) expect((await createMachine(p.apiUrl, x, "rl-x")).status).toBe(200);

    const refused = await createMachine(p.apiUrl, x, "rl-x");
    const atOnceElsewhere = await createMachine(p.apiUrl, y, "rl-y");
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      error: expect.stringMatching(/^rate limit exceeded/),
      status: "rate_limited",
    });
    expect(refused.retryAfter).toMatch(/^[1-9]\d*$/);
    expect(atOnceElsewhere.status).toBe(200);

    const retryAfter = Number(refused.retryAfter);
    // One call refills every 2 s: Retry-After is when the next one fits, in whole seconds.
    expect(retryAfter).toBeLessThanOrEqual(2);
    await sleep(retryAfter * 1000);
    const honoured = await createMachine(p.apiUrl, x, "rl-x");
    expect(honoured.status).toBe(200);
    console.log(
      `rate limits: org rl-org-x (${BUDGET} machine creates per ${PERIOD}): create ${BUDGET + 1} -> 429, Retry-After ${retryAfter}s; ` +
        `org rl-org-y at the same moment -> ${atOnceElsewhere.status}; after ${retryAfter}s -> ${honoured.status}`,
    );
  });

  it("two gateway replicas share one budget", async () => {
    const z = await orgWithApp("rl-org-z", "rl-z", BUDGET);
    const second: GatewayHandle = await p.startGateway();
    // The second replica folds the org's limits from the ORGS stream before it is healthy; check it.
    const org = await fetch(`${second.apiUrl}/v1/orgs/rl-org-z`, {
      headers: { authorization: `Bearer ${p.token}` },
    });
    expect(((await org.json()) as { limits: Record<string, number> }).limits).toMatchObject({
      machine_create: BUDGET,
    });

    expect((await createMachine(p.apiUrl, z, "rl-z")).status).toBe(200);
    expect((await createMachine(second.apiUrl, z, "rl-z")).status).toBe(200);
    const onSecond = await createMachine(second.apiUrl, z, "rl-z");
    const onFirst = await createMachine(p.apiUrl, z, "rl-z");
    expect([onSecond.status, onFirst.status]).toEqual([429, 429]);
    expect(onSecond.retryAfter).toMatch(/^[1-9]\d*$/);
    console.log(
      `rate limits: replicas ${p.apiUrl} and ${second.apiUrl}, ${BUDGET} creates spent one on each -> then 429 on both`,
    );
  });
});
