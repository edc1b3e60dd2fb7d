// Acceptance 5: the web dashboard in a real browser (playwright-core driving Debian's chromium) on a
// running platform. It logs in with a token (a wrong one cannot), opens an app, sees a machine started
// from the CLI turn `started` without a reload (the page follows the app's event stream), and sees an
// autoscaler decision with its reason. The app has its own random name, so the check runs on a platform
// other checks share; it needs the scheduler to decide within its wait (short windows, see the e2e file).
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintToken } from "@hangar/auth";
import { chromium, type Locator, type Page } from "playwright-core";
import { expect } from "vitest";
import { runHangar } from "../../cli/test/run-cli.js";
import { helloDir, scaledHelloConfig, type TestPlatform } from "../platform/harness.js";

/** Debian's chromium unless HANGAR_CHROMIUM names another build. */
const CHROMIUM = process.env.HANGAR_CHROMIUM ?? "/usr/bin/chromium";

/** How the scheduler words a decision's reason (services/scheduler/src/autoscaler.ts). */
const REASON = /^(scale (up|down): |panic: |\d+ running [<>] (min|max)_machines_running)/;

export interface DashboardCheckOptions {
  /**
   * Where to save dashboard-login.png, dashboard-app.png (the app page as opened) and
   * dashboard-app-live.png (after the live changes); none by default (CI leaves the tree clean).
   */
  screenshotsDir?: string;
  /** How long to wait for the autoscaler's first decision on the app; default 120 s. */
  decisionTimeoutMs?: number;
}

/**
 * Waits for `locator` to be shown. Locators, not page.waitForFunction: the dashboard's CSP forbids the
 * string evaluation that one does in the page.
 */
async function until(
  page: Page,
  what: string,
  locator: Locator,
  timeoutMs: number,
  truth: () => Promise<unknown>,
): Promise<void> {
  try {
    await locator.first().waitFor({ timeout: timeoutMs });
  } catch (err) {
    const shown = await page
      .locator("main")
      .textContent()
      .catch(() => "(no page)");
    throw new Error(
      `${what}: not seen within ${timeoutMs} ms. The page showed:\n${shown}\nThe API says:\n${JSON.stringify(await truth())}`,
      { cause: err },
    );
  }
}

export async function checkDashboard(p: TestPlatform, opts: DashboardCheckOptions = {}): Promise<void> {
  const app = `dash-${randomBytes(3).toString("hex")}`;
  // Two machines that scale on connections, min 1: with no traffic the autoscaler stops one, and says why.
  await p.api.ok("POST", "/apps", { app_name: app, org_slug: "personal" });
  for (let i = 0; i < 2; i++) {
    const m = await p.api.ok<{ id: string }>("POST", `/apps/${app}/machines`, {
      config: scaledHelloConfig({ soft: 20, autostop: "stop", min: 1 }),
    });
    const started = await p.api.call("GET", `/apps/${app}/machines/${m.id}/wait?state=started&timeout=60`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
  }
  const cliHome = mkdtempSync(join(tmpdir(), "hangar-dashboard-cli-"));
  writeFileSync(
    join(cliHome, "local.json"),
    JSON.stringify({ api_url: p.apiUrl, proxy_url: p.proxyUrl, nats_url: p.nats.url, token: p.token }),
  );
  // What the API holds, printed when the page does not show what was awaited.
  let traffic: string[] = [];
  const truth = async () => {
    const list = await p.api.call<{ id: string; state: string }[]>("GET", `/apps/${app}/machines`);
    const machines = Array.isArray(list.body) ? list.body.map((m) => `${m.id}:${m.state}`) : list.body;
    return {
      machines,
      scaling: (await p.api.call("GET", `/apps/${app}/scaling?limit=3`)).body,
      traffic: traffic.slice(-40),
    };
  };
  const shots = opts.screenshotsDir;
  if (shots) mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    // The dashboard's answers and the page's errors, printed with a failure.
    traffic = [];
    page.on("response", (r) => traffic.push(`${r.status()} ${r.url().replace(p.apiUrl, "")}`));
    page.on("console", (m) => traffic.push(`console ${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => traffic.push(`page error: ${e.message}`));

    // No session: the dashboard sends the browser to its login.
    await page.goto(`${p.apiUrl}/dashboard/apps/${app}`);
    expect(new URL(page.url()).pathname).toBe("/dashboard/login");
    if (shots) await page.screenshot({ path: join(shots, "dashboard-login.png") });

    // A token signed with another key cannot log in: the form again, 401, no cookie.
    const forged = mintToken(new Uint8Array(randomBytes(32)), { id: "tok_test_operator", kind: "operator" });
    const submit = async (token: string) => {
      await page.fill("#token", token);
      const [answer] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith("/dashboard/login")),
        page.click("form[action='/dashboard/login'] button[type=submit]"),
      ]);
      await page.waitForLoadState();
      return answer.status();
    };
    expect(await submit(forged)).toBe(401);
    expect(await page.locator(".error").textContent()).toContain("invalid token");
    expect(await context.cookies()).toEqual([]);

    // The platform's token logs in: an httpOnly, SameSite=Strict session cookie, then the apps.
    expect(await submit(p.token)).toBe(303);
    expect(new URL(page.url()).pathname).toBe("/dashboard");
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({
      name: "hangar_session",
      httpOnly: true,
      sameSite: "Strict",
      path: "/dashboard",
    });
    expect(cookie?.value).not.toBe(p.token);

    // Open the app from the list.
    await page.click(`a[href="/dashboard/apps/${app}"]`);
    await page.waitForURL(`${p.apiUrl}/dashboard/apps/${app}`);
    await until(
      page,
      "the event stream connected",
      page.locator("#live-status", { hasText: /^live$/ }),
      30_000,
      truth,
    );
    if (shots) await page.screenshot({ path: join(shots, "dashboard-app.png"), fullPage: true });
    // From here on the page must never navigate (no reload): what changes comes from the event stream.
    let navigations = 0;
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });

    // A machine started from the CLI appears, and turns `started`, on the open page.
    const run = await runHangar(["machine", "run", `dir:${helloDir}`, "-a", app, "--detach", "--json"], {
      env: { HANGAR_HOME: cliHome },
    });
    expect(run.code, run.stderr).toBe(0);
    const machine = JSON.parse(run.stdout) as { id: string };
    await until(
      page,
      `machine ${machine.id} shown as started`,
      page.locator(`tr[data-machine-id="${machine.id}"] td.state`, { hasText: /^started$/ }),
      90_000,
      truth,
    );

    // The autoscaler's decision, with its reason, on the same page.
    await until(
      page,
      "an autoscaler decision with its reason",
      page.locator("#scaling .decision .reason", { hasText: REASON }),
      opts.decisionTimeoutMs ?? 120_000,
      truth,
    );
    const reasons = await page.locator("#scaling .decision .reason").allTextContents();
    expect(reasons.some((r) => REASON.test(r))).toBe(true);
    expect(navigations).toBe(0);
    // The machine is still listed (the autoscaler may have stopped it since; it started first).
    expect(await page.locator(`tr[data-machine-id="${machine.id}"]`).count()).toBe(1);
    if (shots) await page.screenshot({ path: join(shots, "dashboard-app-live.png"), fullPage: true });
  } finally {
    await browser.close();
    rmSync(cliHome, { recursive: true, force: true });
    await p.api.call("DELETE", `/apps/${app}`);
  }
}
