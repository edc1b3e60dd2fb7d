import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, expect, it } from "vitest";
import { type AuditEntry, auditAggregateId, auditDecider, auditEntryOf } from "./audit.js";

const spec = deciderSpec(auditDecider);
const entry: AuditEntry = {
  tokenId: "tok-1",
  tokenKind: "deploy",
  action: "machine.create",
  target: "m-1",
  org: "acme",
  app: "web",
  requestId: "req-1",
  atMs: 1_700_000_000_000,
  status: 201,
  method: "POST",
  path: "/v1/apps/web/machines",
};

describe("audit decider", () => {
  it("records a successful call whatever came before", () => {
    const recorded = { type: "AuditRecorded" as const, data: entry };
    spec.given([]).when({ type: "RecordCall", entry }).then([recorded]);
    spec.given([recorded, recorded]).when({ type: "RecordCall", entry }).then([recorded]);
  });

  it("refuses an entry without a token, with a loose action name or a failed status", () => {
    for (const bad of [
      { ...entry, tokenId: "" },
      { ...entry, action: "POST /v1/apps" },
      { ...entry, action: "machine" },
      { ...entry, status: 403 },
      { ...entry, status: 500 },
    ]) {
      spec
        .given([])
        .when({ type: "RecordCall", entry: bad })
        .thenThrows((e) => isDomainError(e, "invalid_argument"));
    }
  });

  it("counts the calls recorded", () => {
    const s = auditDecider.evolve(
      auditDecider.evolve(auditDecider.initialState(), { type: "AuditRecorded", data: entry }),
      {
        type: "AuditRecorded",
        data: entry,
      },
    );
    expect(s.recorded).toBe(2);
  });
});

describe("audit subjects and entries", () => {
  it("names the org and app, with _ for none", () => {
    expect(auditAggregateId("acme", "web")).toBe("acme.web");
    expect(auditAggregateId("acme", "")).toBe("acme._");
    expect(auditAggregateId("", "")).toBe("_._");
    expect(auditAggregateId("my org.*", "web")).toBe(`=${Buffer.from("my org.*").toString("base64url")}.web`);
  });

  it("reads back what protobuf leaves out as empty", () => {
    expect(auditEntryOf({ action: "app.create", atMs: 5 })).toEqual({
      tokenId: "",
      tokenKind: "",
      action: "app.create",
      target: "",
      org: "",
      app: "",
      requestId: "",
      atMs: 5,
      status: 0,
      method: "",
      path: "",
    });
  });
});
