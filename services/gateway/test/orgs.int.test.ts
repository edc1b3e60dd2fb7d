import { randomBytes } from "node:crypto";
import { verifyToken } from "@hangar/auth";
import {
  type AppCommand,
  type AppEvent,
  type AppState,
  appDecider,
  appsStream,
  orgsStream,
} from "@hangar/domain";
import { CommandHandler, DomainError, EventStore, ensureStream, prefixedStream } from "@hangar/eventstore";
import { AggregateView } from "@hangar/service";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Orgs } from "../src/orgs/orgs.js";

// The nats-server is shared with other test files: this file's streams have their own prefix.
const prefix = `orgs${randomBytes(4).toString("hex")}`;
const apps = prefixedStream(appsStream, prefix);
const orgs = prefixedStream(orgsStream, prefix);
const key = new Uint8Array(randomBytes(32));
let nc: NatsConnection;
let store: EventStore;
let appsView: AggregateView<AppState, AppCommand, AppEvent>;
const started: Orgs[] = [];

const start = async () => {
  const o = await Orgs.start(store, appsView, key, orgs);
  started.push(o);
  return o;
};

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  store = await EventStore.connect(nc);
  for (const s of [apps, orgs]) await ensureStream(store.jsm, s);
  // An app from before orgs existed: its org is only a free-text org_slug.
  const handler = new CommandHandler<AppState, AppCommand, AppEvent>(store, apps, appDecider);
  await handler.handle(
    "old-app",
    { type: "CreateApp", name: "old-app", orgSlug: "legacy" },
    { commandId: "c1" },
  );
  appsView = await AggregateView.start(store, apps, appDecider);
  await appsView.caughtUp;
});

afterAll(async () => {
  for (const o of started) await o.stop();
  await appsView?.stop();
  store?.close();
  await nc?.drain();
});

describe("Orgs", () => {
  it("reads an app's free-text org_slug as an org, and records it when a token is made for it", async () => {
    const o = await start();
    expect(o.exists("legacy")).toBe(true);
    expect(o.orgOf("old-app")).toBe("legacy");
    expect(o.orgs()).toEqual([{ slug: "legacy", name: "legacy", createdAtMs: 0 }]);
    await expect(o.createOrg("legacy", "Legacy")).rejects.toSatisfy(
      (e) => e instanceof DomainError && e.code === "already_exists",
    );
    const issued = await o.issueToken({
      kind: "deploy",
      org: "legacy",
      apps: ["old-app"],
      name: "ci",
      expiresAtMs: undefined,
    });
    expect(issued.record).toMatchObject({ org: "legacy", kind: "deploy", apps: ["old-app"], name: "ci" });
    expect(verifyToken(key, issued.token, Date.now())).toMatchObject({
      tokenId: issued.record.id,
      org: "legacy",
      apps: new Set(["old-app"]),
    });
    expect(o.orgs()[0]?.createdAtMs).toBeGreaterThan(0);
    await expect(
      o.issueToken({ kind: "org", org: "ghost", apps: undefined, name: "", expiresAtMs: undefined }),
    ).rejects.toSatisfy((e) => e instanceof DomainError && e.code === "not_found");
  });

  it("revokes by id, seen by every replica, operator tokens too; limits are per org", async () => {
    const one = await start();
    await one.createOrg("acme", "Acme");
    const admin = await one.issueToken({
      kind: "org",
      org: "acme",
      apps: undefined,
      name: "",
      expiresAtMs: undefined,
    });
    const operator = await one.issueToken({
      kind: "operator",
      org: undefined,
      apps: undefined,
      name: "ops",
      expiresAtMs: undefined,
    });
    await one.revokeToken(admin.record.id);
    await one.revokeToken(operator.record.id);
    await one.setLimits("acme", { machine_create: 100 });
    const two = await start();
    for (const o of [one, two]) {
      expect(o.isRevoked(admin.record.id)).toBe(true);
      expect(o.isRevoked(operator.record.id)).toBe(true);
      expect(o.limitsOf("acme")).toEqual({ machine_create: 100 });
      expect(o.tokens("acme").map((t) => t.id)).toEqual([admin.record.id]);
      expect(o.tokens(undefined).map((t) => t.id)).toContain(operator.record.id);
    }
    expect(two.token(admin.record.id)?.revokedAtMs).toBeGreaterThan(0);
    await expect(one.revokeToken("tok_nope")).rejects.toSatisfy(
      (e) => e instanceof DomainError && e.code === "not_found",
    );
  });
});
