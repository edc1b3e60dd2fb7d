import { describe, expect, it } from "vitest";
import type { ApiClient } from "../api.js";
import { CliError } from "../cli-error.js";
import type { Release } from "../types.js";
import { parseAssignments, parseImport, rollSecrets, secretsTable } from "./secrets.js";

describe("hangar secrets", () => {
  it("reads NAME=VALUE arguments, values keeping their '='", () => {
    expect(parseAssignments(["A=1", "URL=postgres://u:p@h/db?x=y", "EMPTY="])).toEqual({
      A: "1",
      URL: "postgres://u:p@h/db?x=y",
      EMPTY: "",
    });
    expect(() => parseAssignments(["NOVALUE"])).toThrow(CliError);
    expect(() => parseAssignments(["1A=x"])).toThrow(/environment variable name/);
    expect(() => parseAssignments(["A-B=x"])).toThrow(CliError);
  });

  it("imports dotenv text: comments, quotes, multi-line values", () => {
    const text = '# comment\nA=1\nexport B="two words"\nC="line1\nline2"\n\nD=\'x=y\'\n';
    expect(parseImport(text)).toEqual({ A: "1", B: "two words", C: "line1\nline2", D: "x=y" });
  });

  it("lists names, digests and status, never values", () => {
    const table = secretsTable(
      {
        version: 2,
        secrets: [
          {
            name: "A",
            digest: "abc",
            status: "deployed",
            created_at: "2026-01-01T00:00:00Z",
            updated_at: "2026-01-01T00:00:00Z",
          },
          {
            name: "B",
            digest: null,
            status: "unset_staged",
            created_at: "2026-01-01T00:00:00Z",
            updated_at: "2026-01-01T00:00:00Z",
          },
        ],
      },
      Date.parse("2026-01-01T00:01:00Z"),
    );
    expect(table).toMatch(/NAME\s+DIGEST\s+STATUS/);
    expect(table).toMatch(/A\s+abc\s+Deployed/);
    expect(table).toMatch(/B\s+-\s+Staged for removal/);
  });
});

/** An API that knows releases only, whose in-progress ones end after `polls` reads. */
function fakeApi(releases: Release[], polls = 2) {
  const created: Array<Record<string, unknown>> = [];
  const reads = new Map<number, number>();
  const api = {
    listReleases: async () => [...releases].sort((a, b) => b.version - a.version),
    listMachines: async () => [],
    appLogs: async function* () {},
    getRelease: async (_app: string, version: number) => {
      const r = releases.find((x) => x.version === version) as Release;
      const n = (reads.get(version) ?? 0) + 1;
      reads.set(version, n);
      if (n >= polls && (r.status === "running" || r.status === "pending")) r.status = "succeeded";
      return { ...r };
    },
    createRelease: async (_app: string, body: Record<string, unknown>) => {
      created.push(body);
      const r: Release = {
        version: releases.length + 1,
        status: "pending",
        deploy: true,
        image: String(body.image),
      };
      releases.push(r);
      return r;
    },
  };
  return { api: api as unknown as ApiClient, created };
}

describe("rollSecrets", () => {
  const config = { app: "a", deploy: { release_command: "migrate", strategy: "bluegreen" } };
  const opts = { waitTimeoutMs: 60_000, progress: () => undefined, reason: "secrets: set A" };

  it("rolls the current image and config without the release_command, one machine at a time, as a release of the platform", async () => {
    const { api, created } = fakeApi([
      { version: 1, status: "succeeded", deploy: true, image: "img:1", config },
    ]);
    const rolled = await rollSecrets(api, "a", opts);
    expect(rolled).toMatchObject({ release: 2 });
    expect(created).toEqual([
      expect.objectContaining({
        image: "img:1",
        deploy: true,
        strategy: "rolling",
        max_unavailable: "1",
        config: { app: "a", deploy: { strategy: "bluegreen" } },
      }),
    ]);
  });

  it("waits for a deploy in progress and rolls its image, instead of taking its place", async () => {
    const { api, created } = fakeApi([
      { version: 1, status: "succeeded", deploy: true, image: "img:1", config },
      { version: 2, status: "running", deploy: true, image: "img:2", config },
    ]);
    await rollSecrets(api, "a", opts);
    expect(created.map((c) => c.image)).toEqual(["img:2"]);
  });

  it("refuses a detached roll while a deploy is in progress, creating no release", async () => {
    const { api, created } = fakeApi([
      { version: 1, status: "succeeded", deploy: true, image: "img:1", config },
      { version: 2, status: "rolling_back", deploy: true, image: "img:2", config },
    ]);
    await expect(rollSecrets(api, "a", { ...opts, detach: true })).rejects.toThrow(
      /v2 of app a is rolling_back/,
    );
    expect(created).toEqual([]);
  });
});
