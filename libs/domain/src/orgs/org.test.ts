import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, it } from "vitest";
import { orgDecider } from "./org.js";

const spec = deciderSpec(orgDecider);
const created = { type: "OrgCreated" as const, data: { slug: "acme", name: "Acme", createdAtMs: 1 } };
const issue = {
  type: "IssueToken" as const,
  id: "tok1",
  org: "acme",
  kind: "deploy",
  name: "ci",
  apps: ["web"],
  expiresAtMs: 99,
  nowMs: 5,
};
const issued = {
  type: "TokenIssued" as const,
  data: {
    id: "tok1",
    org: "acme",
    kind: "deploy",
    name: "ci",
    apps: ["web"],
    expiresAtMs: 99,
    createdAtMs: 5,
  },
};

describe("org decider", () => {
  it("creates an org once, under a slug that follows the app-name rules", () => {
    spec.given([]).when({ type: "CreateOrg", slug: "acme", name: "Acme", nowMs: 1 }).then([created]);
    spec
      .given([created])
      .when({ type: "CreateOrg", slug: "acme", name: "Acme", nowMs: 2 })
      .thenThrows((e) => isDomainError(e, "already_exists"));
    for (const slug of ["Acme", "_operator", "-a", "a.b", ""]) {
      spec
        .given([])
        .when({ type: "CreateOrg", slug, name: slug, nowMs: 1 })
        .thenThrows((e) => isDomainError(e, "invalid_argument"));
    }
  });

  it("issues tokens in an existing org, and operator tokens without one", () => {
    spec.given([created]).when(issue).then([issued]);
    spec
      .given([])
      .when(issue)
      .thenThrows((e) => isDomainError(e, "not_found"));
    spec
      .given([])
      .when({ ...issue, org: undefined, kind: "operator", apps: [], expiresAtMs: undefined })
      .then([
        {
          type: "TokenIssued",
          data: {
            id: "tok1",
            org: "",
            kind: "operator",
            name: "ci",
            apps: [],
            expiresAtMs: 0,
            createdAtMs: 5,
          },
        },
      ]);
    spec
      .given([created, issued])
      .when(issue)
      .thenThrows((e) => isDomainError(e, "already_exists"));
  });

  it("revokes a known token once", () => {
    const revoked = { type: "TokenRevoked" as const, data: { id: "tok1", revokedAtMs: 7 } };
    spec.given([created, issued]).when({ type: "RevokeToken", id: "tok1", nowMs: 7 }).then([revoked]);
    spec.given([created, issued, revoked]).when({ type: "RevokeToken", id: "tok1", nowMs: 8 }).then([]);
    spec
      .given([created])
      .when({ type: "RevokeToken", id: "nope", nowMs: 7 })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });

  it("sets limits per action, whole numbers only", () => {
    spec
      .given([created])
      .when({ type: "SetOrgLimits", perMinute: { machine_create: 100 } })
      .then([{ type: "OrgLimitsSet", data: { perMinute: { machine_create: 100 } } }]);
    spec
      .given([created])
      .when({ type: "SetOrgLimits", perMinute: { machine_create: 1.5 } })
      .thenThrows((e) => isDomainError(e, "invalid_argument"));
    spec
      .given([])
      .when({ type: "SetOrgLimits", perMinute: {} })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });
});
