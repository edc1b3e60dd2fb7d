// Webhooks on a running platform: the CLI makes a webhook through the gateway, the webhooks service
// (its own process and NATS user) follows EVENTS and POSTs an app's creation to a real receiver, which
// fails the first delivery and accepts the retry (the default backoff: 10 s). The receiver checks the
// signature with plain node:crypto; the CLI shows the delivery log and deletes the webhook. Its apps
// and webhook have their own random names, so it runs on a platform other checks share.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mintToken } from "@hangar/auth";
import { expect } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import type { TestPlatform } from "../platform/harness.js";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

function verified(secret: string, header: string, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const expected = createHmac("sha256", secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(Buffer.from(m[2] ?? "", "hex"), expected);
}

export async function checkWebhooks(p: TestPlatform): Promise<void> {
  const tag = randomBytes(3).toString("hex");
  const first = `wh-${tag}`;
  const second = `wh-${tag}-b`;
  // An org token: a webhook belongs to the token's org.
  const token = mintToken(p.tokenKey, { id: `tok_wh_${tag}`, kind: "org", org: "personal" });
  const env = {
    HANGAR_HOME: join(p.home, "no-local-json"),
    HANGAR_API_URL: p.apiUrl,
    HANGAR_API_TOKEN: token,
  };
  const hangar = async (...args: string[]) => {
    const res = await runHangar(args, { env });
    expect(res.code, `hangar ${args.join(" ")}: ${res.stderr}`).toBe(0);
    return res.stdout;
  };

  // Ours only: other checks' apps are created on the same platform.
  const got: Received[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      if ((JSON.parse(body) as { app?: string }).app !== second) return res.writeHead(204).end();
      got.push({ headers: req.headers, body });
      res.writeHead(got.length === 1 ? 500 : 204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hangar`;
    await p.api.ok("POST", "/apps", { app_name: first, org_slug: "personal" });
    const made = JSON.parse(
      await hangar("webhooks", "create", "--url", url, "--events", "app.created", "--json"),
    ) as {
      id: string;
      secret: string;
      org: string;
    };
    expect(made).toMatchObject({ org: "personal", app: null, events: ["app.created"] });
    expect(made.secret).toMatch(/^whsec_/);

    await p.api.ok("POST", "/apps", { app_name: second, org_slug: "personal" });
    const deadline = Date.now() + 60_000;
    while (got.length < 2 && Date.now() < deadline) await sleep(100);
    expect(got, "the failed delivery and its retry").toHaveLength(2);
    const [a, b] = got;
    expect(a?.headers["x-hangar-event-id"]).toBe(b?.headers["x-hangar-event-id"]);
    for (const r of got) {
      expect(verified(made.secret, String(r.headers["x-hangar-signature"]), r.body)).toBe(true);
      expect(JSON.parse(r.body)).toMatchObject({ type: "app.created", app: second, org: "personal" });
    }

    const log = JSON.parse(await hangar("webhooks", "deliveries", made.id, "--json")) as Array<{
      event_id: string;
      status: string;
      attempts: Array<{ status_code: number | null }>;
    }>;
    const ours = log.find((d) => d.event_id === a?.headers["x-hangar-event-id"]);
    expect(ours?.status).toBe("delivered");
    expect(ours?.attempts.map((x) => x.status_code)).toEqual([500, 204]);

    // The secret is shown once: neither the list nor show has it.
    const listed = await hangar("webhooks", "list", "--json");
    expect(listed).toContain(made.id);
    expect(listed).not.toContain(made.secret);
    await hangar("webhooks", "delete", made.id);
    expect(await hangar("webhooks", "list", "--json")).not.toContain(made.id);
  } finally {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
}
