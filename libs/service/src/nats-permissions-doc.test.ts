import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { DOC_BEGIN, DOC_END, permissionsMarkdown } from "./nats-permissions-doc.js";

it("docs/nats-security.md lists the permission table as the code has it", () => {
  const doc = readFileSync(new URL("../../../docs/nats-security.md", import.meta.url), "utf8");
  const block = doc.slice(doc.indexOf(DOC_BEGIN), doc.indexOf(DOC_END) + DOC_END.length);
  expect(
    block,
    "docs/nats-security.md is out of date: run `node --conditions=source --import tsx scripts/nats-security.ts docs`",
  ).toBe(permissionsMarkdown());
});
