import { deciderSpec, isDomainError } from "@hangar/eventstore";
import { describe, it } from "vitest";
import { appDecider } from "./app.js";

const spec = deciderSpec(appDecider);
const created = {
  type: "AppCreated" as const,
  data: { name: "hello", orgSlug: "personal", network: "default" },
};

describe("app decider", () => {
  it("creates an app on the default network", () => {
    spec.given([]).when({ type: "CreateApp", name: "hello", orgSlug: "personal" }).then([created]);
  });

  it("refuses a name that is not a DNS label", () => {
    for (const name of ["Hello", "-x", "x-", "a_b", "", "a".repeat(64)]) {
      spec
        .given([])
        .when({ type: "CreateApp", name, orgSlug: "personal" })
        .thenThrows((e) => isDomainError(e, "invalid_argument"));
    }
  });

  it("refuses a name the platform reserves (library/ holds the base images, hangar/ its own)", () => {
    for (const name of ["library", "hangar"]) {
      spec
        .given([])
        .when({ type: "CreateApp", name, orgSlug: "personal" })
        .thenThrows((e) => isDomainError(e, "already_exists"));
    }
  });

  it("refuses to create an app twice, also after it was destroyed", () => {
    spec
      .given([created])
      .when({ type: "CreateApp", name: "hello", orgSlug: "personal" })
      .thenThrows((e) => isDomainError(e, "already_exists"));
    spec
      .given([created, { type: "AppDestroyed", data: { name: "hello" } }])
      .when({ type: "CreateApp", name: "hello", orgSlug: "personal" })
      .thenThrows((e) => isDomainError(e, "already_exists"));
  });

  it("destroys an existing app once", () => {
    spec
      .given([created])
      .when({ type: "DestroyApp" })
      .then([{ type: "AppDestroyed", data: { name: "hello" } }]);
    spec
      .given([created, { type: "AppDestroyed", data: { name: "hello" } }])
      .when({ type: "DestroyApp" })
      .thenThrows((e) => isDomainError(e, "not_found"));
  });
});
