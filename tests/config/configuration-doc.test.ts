import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIGURATION_DOC, configurationDoc } from "../../scripts/configuration-doc.js";
import { SERVICE_CONFIGS } from "../../scripts/service-configs.js";

describe("docs/configuration.md", () => {
  it("is what the services' settings schemas generate (run `pnpm docs:config` after changing one)", () => {
    expect(readFileSync(CONFIGURATION_DOC, "utf8")).toBe(configurationDoc());
  });

  it("lists every setting of every service", () => {
    const doc = configurationDoc();
    for (const config of Object.values(SERVICE_CONFIGS)) {
      for (const key of Object.keys(config.schema.shape))
        expect(doc).toMatch(new RegExp(`^\\| \`${key}\` +\\|`, "m"));
    }
  });
});
