import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogEntry } from "../src/logs.js";
import { type RunningCli, runHangar, startHangar } from "./run-cli.js";

const TOKEN = "logs-token";
let url: string;
let server: ReturnType<typeof createServer>;
/** The query strings the stand-in got, and the responses it still holds open (following). */
const queries: URLSearchParams[] = [];
const following: ServerResponse[] = [];
const running: RunningCli[] = [];

function entry(message: string, instance = "m1", level = "info"): LogEntry {
  return { timestamp: "2026-12-04T12:00:00.123Z", message, level, instance, region: "local" };
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// A stand-in for the gateway's logs route: the token, an app "web", two recent lines, then (unless
// no_tail) the response stays open for the test to write more.
beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    queries.push(u.searchParams);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "invalid bearer token", status: "unauthenticated" }));
      return;
    }
    if (u.pathname !== "/v1/apps/web/logs") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "app nope not found", status: "not_found" }));
      return;
    }
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    res.write(
      `${JSON.stringify(entry("listening on :8080"))}\n${JSON.stringify(entry("oops", "m1", "error"))}\n`,
    );
    if (u.searchParams.get("no_tail") === "true") res.end();
    else following.push(res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const cli of running) if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
  server.closeAllConnections();
  server.close();
});

const env = (token = TOKEN) => ({
  HANGAR_HOME: "/nonexistent",
  HANGAR_API_URL: url,
  HANGAR_API_TOKEN: token,
});

describe("hangar logs", () => {
  it("prints the recent lines, then follows new ones, until Ctrl-C", async () => {
    const cli = startHangar(["logs", "-a", "web", "-m", "m1", "-r", "local"], { env: env() });
    running.push(cli);
    await until(() => cli.output().stdout.includes("oops"), "the recent lines");
    expect(queries.at(-1)?.get("instance")).toBe("m1");
    expect(queries.at(-1)?.get("region")).toBe("local");
    expect(queries.at(-1)?.has("no_tail")).toBe(false);
    following.at(-1)?.write(`${JSON.stringify(entry("new line"))}\n`);
    await until(() => cli.output().stdout.includes("new line"), "the followed line");
    expect(cli.output().stdout).toBe(
      [
        "2026-12-04T12:00:00.123Z app[m1] local [info] listening on :8080",
        "2026-12-04T12:00:00.123Z app[m1] local [error] oops",
        "2026-12-04T12:00:00.123Z app[m1] local [info] new line",
        "",
      ].join("\n"),
    );
    cli.child.kill("SIGINT");
    expect((await cli.exited).code).toBe(0);
  });

  it("--no-tail prints the recent lines and exits; --json prints the API's entries", async () => {
    const plain = await runHangar(["logs", "-a", "web", "--no-tail"], { env: env() });
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim().split("\n")).toHaveLength(2);
    expect(queries.at(-1)?.get("no_tail")).toBe("true");
    const json = await runHangar(["logs", "-a", "web", "-n", "--json"], { env: env() });
    expect(json.code).toBe(0);
    expect(
      json.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([entry("listening on :8080"), entry("oops", "m1", "error")]);
  });

  it("is refused without a token or with a wrong one, and says so", async () => {
    const none = await runHangar(["logs", "-a", "web"], {
      env: { HANGAR_HOME: "/nonexistent", HANGAR_API_URL: url },
    });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain("no API token");
    const wrong = await runHangar(["logs", "-a", "web"], { env: env("wrong") });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("invalid bearer token");
    expect(wrong.stderr).toContain("HANGAR_API_TOKEN");
  });

  it("names an unknown app and how to create it", async () => {
    const res = await runHangar(["logs", "-a", "nope", "--no-tail"], { env: env() });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("app nope not found");
    expect(res.stderr).toContain("hangar apps create nope");
  });
});
