import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { NATS_SECURITY_DOC, natsSecurityDoc } from "../../scripts/nats-security-doc.js";

it("docs/nats-security.md lists the permission table as the code has it", () => {
  const doc = readFileSync(NATS_SECURITY_DOC, "utf8");
  expect(
    doc,
    "docs/nats-security.md is out of date: run `node --conditions=source --import tsx scripts/nats-security.ts docs`",
  ).toBe(natsSecurityDoc(doc));
});
