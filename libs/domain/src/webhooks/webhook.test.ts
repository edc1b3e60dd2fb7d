import { deciderSpec, fold, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import {
  givesUp,
  nextAttemptAtMs,
  type RetryPolicy,
  retryDelayMs,
  type WebhookCommand,
  type WebhookEvent,
  webhookDecider,
  webhookMatches,
  webhookUrlProblem,
} from "./webhook.js";

const spec = deciderSpec(webhookDecider);
const sealed = new Uint8Array([1, 2, 3]);
const create: Extract<WebhookCommand, { type: "CreateWebhook" }> = {
  type: "CreateWebhook",
  id: "wh_0123456789abcdef",
  org: "acme",
  app: "",
  url: "https://example.com/hook",
  eventTypes: ["machine.started"],
  masterKeyId: "k1",
  sealedSecret: sealed,
  afterSeq: 10,
  atMs: 1_000,
};
const { type: _, ...createdData } = create;
const created: WebhookEvent = { type: "WebhookCreated", data: createdData };
const queued: WebhookEvent = {
  type: "WebhookDeliveryQueued",
  data: { eventId: "11", eventType: "machine.started", atMs: 2_000 },
};
const failed = (atMs: number): WebhookEvent => ({
  type: "WebhookDeliveryAttempted",
  data: { eventId: "11", statusCode: 500, error: "", durationMs: 5, atMs },
});
const attempt = (statusCode: number, giveUp = false): WebhookCommand => ({
  type: "RecordAttempt",
  eventId: "11",
  statusCode,
  error: statusCode === 0 ? "timeout" : "",
  durationMs: 5,
  atMs: 3_000,
  giveUp,
});
const policy: RetryPolicy = { initialMs: 10_000, maxMs: 3_600_000, giveUpAfterMs: 86_400_000 };

describe("webhook decider", () => {
  it("creates a webhook once, refusing bad urls, types and ids", () => {
    spec.given([]).when(create).then([created]);
    spec
      .given([created])
      .when(create)
      .thenThrows((e) => isDomainError(e, "already_exists"));
    for (const bad of [
      { ...create, url: "ftp://example.com" },
      { ...create, url: "https://user:pw@example.com" },
      { ...create, url: "not a url" },
      { ...create, eventTypes: ["machine.*"] },
      { ...create, id: "wh_1.2" },
      { ...create, org: "" },
      { ...create, sealedSecret: new Uint8Array() },
    ]) {
      spec
        .given([])
        .when(bad)
        .thenThrows((e) => isDomainError(e, "invalid_argument"));
    }
  });

  it("queues an event once, and nothing for old events or a deleted webhook", () => {
    const q = {
      type: "QueueDelivery" as const,
      eventId: "11",
      seq: 11,
      eventType: "machine.started",
      atMs: 2_000,
    };
    spec.given([created]).when(q).then([queued]);
    spec.given([created, queued]).when(q).then([]);
    spec
      .given([created])
      .when({ ...q, eventId: "10", seq: 10 })
      .then([]);
    spec
      .given([created, { type: "WebhookDeleted", data: { atMs: 1 } }])
      .when(q)
      .then([]);
  });

  it("records a 2xx as delivered, a failure as an attempt, and gives up when told", () => {
    const data = { eventId: "11", durationMs: 5, atMs: 3_000 };
    spec
      .given([created, queued])
      .when(attempt(204))
      .then([
        { type: "WebhookDeliveryAttempted", data: { ...data, statusCode: 204, error: "" } },
        { type: "WebhookDeliveryDelivered", data: { eventId: "11", atMs: 3_000 } },
      ]);
    spec
      .given([created, queued])
      .when(attempt(500))
      .then([{ type: "WebhookDeliveryAttempted", data: { ...data, statusCode: 500, error: "" } }]);
    spec
      .given([created, queued])
      .when(attempt(0, true))
      .then([
        { type: "WebhookDeliveryAttempted", data: { ...data, statusCode: 0, error: "timeout" } },
        { type: "WebhookDeliveryGivenUp", data: { eventId: "11", atMs: 3_000 } },
      ]);
    spec
      .given([created, queued, { type: "WebhookDeliveryDelivered", data: { eventId: "11", atMs: 1 } }])
      .when(attempt(200))
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
    spec
      .given([created])
      .when(attempt(200))
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  it("redelivers a finished delivery only", () => {
    const redeliver = { type: "RequestRedelivery" as const, eventId: "11", atMs: 9_000 };
    const given: WebhookEvent = { type: "WebhookDeliveryGivenUp", data: { eventId: "11", atMs: 5_000 } };
    spec
      .given([created, queued, failed(3_000), given])
      .when(redeliver)
      .then([{ type: "WebhookRedeliveryRequested", data: { eventId: "11", atMs: 9_000 } }]);
    spec
      .given([created, queued])
      .when(redeliver)
      .thenThrows((e) => isDomainError(e, "failed_precondition"));
    spec
      .given([created, queued, given])
      .when({ ...redeliver, eventId: "12" })
      .thenThrows((e) => isDomainError(e, "not_found"));
    spec
      .given([])
      .when({ type: "DeleteWebhook", atMs: 1 })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  it("folds the log: attempts, the round's count, and a new round on redelivery", () => {
    const s = fold(webhookDecider, [
      created,
      queued,
      failed(3_000),
      failed(13_000),
      { type: "WebhookDeliveryGivenUp", data: { eventId: "11", atMs: 13_000 } },
      { type: "WebhookRedeliveryRequested", data: { eventId: "11", atMs: 50_000 } },
    ]);
    const d = s?.deliveries[0];
    expect(d).toMatchObject({ status: "pending", roundAttempts: 0, roundStartMs: 50_000 });
    expect(d?.attempts.map((a) => a.atMs)).toEqual([3_000, 13_000]);
    expect(s?.sealedSecret).toEqual(sealed);
  });
});

describe("retry schedule", () => {
  it("doubles from the initial delay up to the cap", () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(policy, n))).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(retryDelayMs(policy, 20)).toBe(3_600_000);
  });

  it("is due at once for a new round, then after the backoff from the last attempt", () => {
    const s = fold(webhookDecider, [created, queued]);
    const d = s?.deliveries[0];
    if (!d) throw new Error("no delivery");
    expect(nextAttemptAtMs(d, policy)).toBe(2_000);
    const after = fold(webhookDecider, [failed(3_000), failed(13_500)], s)?.deliveries[0];
    if (!after) throw new Error("no delivery");
    expect(nextAttemptAtMs(after, policy)).toBe(13_500 + 20_000);
  });

  it("gives up once the next attempt would fall past the give-up time", () => {
    const d = fold(webhookDecider, [created, queued])?.deliveries[0];
    if (!d) throw new Error("no delivery");
    const short = { ...policy, giveUpAfterMs: 30_000 };
    expect(givesUp(d, 2_000, short)).toBe(false); // next at 12 s
    expect(givesUp(d, 25_000, short)).toBe(true); // next at 35 s, past 32 s
  });
});

describe("matching and urls", () => {
  const hook = fold(webhookDecider, [created]);
  if (!hook) throw new Error("no webhook");
  const ev = { seq: 11, type: "machine.started", app: "web", org: "acme" };

  it("matches the org, the app filter and the types, after the webhook was made", () => {
    expect(webhookMatches(hook, ev)).toBe(true);
    expect(webhookMatches(hook, { ...ev, seq: 10 })).toBe(false);
    expect(webhookMatches(hook, { ...ev, org: "other" })).toBe(false);
    expect(webhookMatches(hook, { ...ev, type: "machine.stopped" })).toBe(false);
    expect(webhookMatches({ ...hook, app: "api" }, ev)).toBe(false);
    expect(webhookMatches({ ...hook, eventTypes: [] }, { ...ev, type: "release.created" })).toBe(true);
    expect(webhookMatches({ ...hook, deleted: true }, ev)).toBe(false);
  });

  it("says what is wrong with a url", () => {
    expect(webhookUrlProblem("http://127.0.0.1:8080/x")).toBeUndefined();
    expect(webhookUrlProblem("javascript:alert(1)")).toMatch(/http/);
  });
});
