import {
  DOMAIN_ERROR_CODES,
  DomainError,
  type DomainErrorCode,
  EventStoreError,
  RetriesExhaustedError,
} from "@hangar/eventstore";
import { CommandError } from "@hangar/service";
import { createLogger } from "@hangar/telemetry";
import { JetStreamApiError } from "@nats-io/jetstream";
import {
  ClosedConnectionError,
  InvalidArgumentError,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/transport-node";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { ApiEnv } from "./context.js";
import { errorHandler, notFound } from "./error-handler.js";
import { API_CODE_OF, ApiError, ERROR_STATUS, toApiError } from "./errors.js";
import { requestId } from "./request-id.js";

function appThrowing(err: unknown) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("test", {
    destination: { write: (s: string) => void lines.push(JSON.parse(s)) },
  });
  const app = new Hono<ApiEnv>()
    .use(requestId())
    .get("/boom", () => {
      throw err;
    })
    .onError(errorHandler(logger))
    .notFound(notFound);
  return { app, lines };
}

it("sends an ApiError as Fly's body with its code's status, without logging a client error", async () => {
  const { app, lines } = appThrowing(ApiError.of("not_found", "machine m1 not found"));
  const res = await app.request("/boom");
  expect(res.status).toBe(404);
  expect(await res.json()).toEqual({ error: "machine m1 not found", status: "not_found" });
  expect(lines).toEqual([]);
});

it("uses the status ERROR_STATUS gives a code", async () => {
  const { app } = appThrowing(ApiError.of("insufficient_capacity", "no host in ams can take 8 cpus"));
  const res = await app.request("/boom");
  expect(res.status).toBe(422);
  expect(await res.json()).toEqual({
    error: "no host in ams can take 8 cpus",
    status: "insufficient_capacity",
  });
  expect(ERROR_STATUS.deadline_exceeded).toBe(408);
  expect(ERROR_STATUS.aborted).toBe(409);
  expect(ERROR_STATUS.failed_precondition).toBe(412);
  expect(ERROR_STATUS.invalid_argument).toBe(400);
});

describe("platform codes", () => {
  const codes = Object.keys(DOMAIN_ERROR_CODES) as DomainErrorCode[];

  it("maps every platform code to an API code with a client or server status", () => {
    for (const code of codes) {
      const api = toApiError(new DomainError(`refused: ${code}`, code));
      expect(api?.code, code).toBe(API_CODE_OF[code]);
      expect(api?.status, code).toBe(ERROR_STATUS[API_CODE_OF[code]]);
    }
    expect(Object.fromEntries(codes.map((c) => [c, ERROR_STATUS[API_CODE_OF[c]]]))).toEqual({
      invalid_argument: 400,
      not_found: 404,
      already_exists: 409,
      failed_precondition: 412,
      conflict: 409,
      lease_held: 409,
      insufficient_capacity: 422,
      unavailable: 503,
      timeout: 503,
      internal: 500,
    });
  });

  it("answers 500 for a platform code only when the service failed (internal)", () => {
    const fivehundreds = codes.filter((c) => ERROR_STATUS[API_CODE_OF[c]] === 500);
    expect(fivehundreds).toEqual(["internal"]);
  });

  it("sends a refusal from a decider or from another service with its code's status", async () => {
    const local = await appThrowing(
      new DomainError("cannot stop a machine that is stopped", "failed_precondition"),
    ).app.request("/boom");
    expect(local.status).toBe(412);
    expect(await local.json()).toEqual({
      error: "cannot stop a machine that is stopped",
      status: "failed_precondition",
    });
    const remote = await appThrowing(new CommandError("lease held by deploy", "lease_held")).app.request(
      "/boom",
    );
    expect(remote.status).toBe(409);
    expect(await remote.json()).toEqual({ error: "lease held by deploy", status: "aborted" });
  });

  it("hides the message of a service that failed", async () => {
    const { app, lines } = appThrowing(
      new CommandError("cmd.x failed: TypeError: secret detail", "internal"),
    );
    const res = await app.request("/boom");
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "internal error", status: "unknown" });
    expect(JSON.stringify(lines)).toContain("secret detail");
  });
});

it("logs a 5xx ApiError", async () => {
  const { app, lines } = appThrowing(ApiError.of("unavailable", "placement is not answering"));
  const res = await app.request("/boom", { headers: { "fly-request-id": "r-503" } });
  expect(res.status).toBe(503);
  expect(lines).toMatchObject([
    { level: 50, msg: "placement is not answering", request_id: "r-503", code: "unavailable" },
  ]);
});

it("hides an unexpected error behind a generic 500 and logs it with details", async () => {
  const { app, lines } = appThrowing(new Error("connection to nats lost: secret detail"));
  const res = await app.request("/boom", { headers: { "fly-request-id": "r-500" } });
  expect(res.status).toBe(500);
  const text = await res.text();
  expect(JSON.parse(text)).toEqual({ error: "internal error", status: "unknown" });
  expect(text).not.toContain("secret");
  expect(lines).toMatchObject([
    { level: 50, msg: "unhandled error", request_id: "r-500", method: "GET", path: "/boom" },
  ]);
  expect(JSON.stringify(lines[0])).toContain("connection to nats lost");
});

it("answers an event store error that may pass with 503, and one that will not with 500", async () => {
  const busy = await appThrowing(new RetriesExhaustedError("app.m1", 5)).app.request("/boom");
  expect(busy.status).toBe(503);
  expect(await busy.json()).toEqual({
    error: "gave up on app.m1 after 5 conflicting attempts; try again",
    status: "unavailable",
  });
  const broken = new EventStoreError("undecodable event", "DECODE", false);
  expect((await appThrowing(broken).app.request("/boom")).status).toBe(500);
});

it("answers NATS not answering (a node lost, a leader electing) as a 503 to retry, not a 500", async () => {
  const stalled = [
    new TimeoutError(),
    new NoRespondersError("$JS.API.STREAM.INFO.MACHINES"),
    new ClosedConnectionError(),
    new Error("appending failed", {
      cause: new RequestError("request failed", { cause: new TimeoutError() }),
    }),
    new JetStreamApiError({
      code: 503,
      err_code: 10008,
      description: "JetStream system temporarily unavailable",
    }),
  ];
  for (const err of stalled) {
    const res = await appThrowing(err).app.request("/boom");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: "the platform's messaging did not answer in time; try again",
      status: "unavailable",
    });
  }
  // A JetStream refusal that is not about availability stays what it was: unexpected here.
  const refused = new JetStreamApiError({ code: 400, err_code: 10071, description: "wrong last sequence" });
  expect((await appThrowing(refused).app.request("/boom")).status).toBe(500);
});

it("treats an error with a code outside the platform's as unexpected", async () => {
  const odd = Object.assign(new Error("odd"), { code: "not_a_platform_code" });
  expect(toApiError(odd)).toBeUndefined();
  const res = await appThrowing(odd).app.request("/boom");
  expect(res.status).toBe(500);
});

it("answers unknown routes with a Fly-shaped 404", async () => {
  const { app } = appThrowing(null);
  const res = await app.request("/nope", { method: "PUT" });
  expect(res.status).toBe(404);
  expect(await res.json()).toEqual({ error: "no route for PUT /nope", status: "not_found" });
});

it("sends the NATS client's refusal of a message over max_payload, even wrapped, as 413", async () => {
  // The error the client throws (nats-core's protocol.js) for a publish or request over max_payload.
  const refusal = InvalidArgumentError.format("payload", "max_payload size exceeded");
  const wrapped = new Error("append machine event failed", { cause: refusal });
  for (const err of [refusal, wrapped]) {
    const res = await appThrowing(err).app.request("/boom");
    expect(res.status).toBe(413);
    expect(((await res.json()) as { status: string }).status).toBe("resource_exhausted");
  }
  // Another invalid argument of the client stays an unexpected error.
  expect(toApiError(InvalidArgumentError.format("subject", "is not valid"))).toBeUndefined();
});
