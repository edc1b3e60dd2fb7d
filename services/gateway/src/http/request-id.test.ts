import { Hono } from "hono";
import { expect, it } from "vitest";
import type { ApiEnv } from "./context.js";
import { REQUEST_ID_HEADER, requestId } from "./request-id.js";

const app = new Hono<ApiEnv>().use(requestId()).get("/", (c) => c.text(c.get("requestId")));

it("echoes a client's fly-request-id and hands it to handlers", async () => {
  const res = await app.request("/", { headers: { [REQUEST_ID_HEADER]: "01JNRQ9VVKJ7HZFMJWJB3M3RYN-ams" } });
  expect(res.headers.get(REQUEST_ID_HEADER)).toBe("01JNRQ9VVKJ7HZFMJWJB3M3RYN-ams");
  expect(await res.text()).toBe("01JNRQ9VVKJ7HZFMJWJB3M3RYN-ams");
});

it("makes a fresh id when none or an unacceptable one is sent", async () => {
  const ids = new Set<string>();
  const sent: Record<string, string>[] = [
    {},
    {},
    { [REQUEST_ID_HEADER]: 'spaces and "quotes"' },
    { [REQUEST_ID_HEADER]: "x".repeat(129) },
  ];
  for (const headers of sent) {
    const res = await app.request("/", { headers });
    const id = res.headers.get(REQUEST_ID_HEADER) ?? "";
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.text()).toBe(id);
    ids.add(id);
  }
  expect(ids.size).toBe(4);
});

it("sets the header on error responses too", async () => {
  const failing = new Hono<ApiEnv>()
    .use(requestId())
    .get("/", () => {
      throw new Error("boom");
    })
    .onError((_err, c) => c.text("failed", 500));
  const res = await failing.request("/", { headers: { [REQUEST_ID_HEADER]: "req-1" } });
  expect(res.status).toBe(500);
  expect(res.headers.get(REQUEST_ID_HEADER)).toBe("req-1");
});
