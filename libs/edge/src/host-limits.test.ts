/**
 * Bounds on the host work an app can ask for (issue 21's security review): image outputs and blur,
 * crypto.subtle's PBKDF2 iterations and RSA modulus, and how many such operations run at once.
 */
import sharp from "sharp";
import { afterAll, describe, expect, it, vi } from "vitest";
import { failure } from "../test/edge-error.js";
import { EDGE_HEAVY_PER_ISOLATE, EDGE_PBKDF2_MAX_ITERATIONS, EDGE_TIMERS_MAX } from "./bridge.js";
import { edgeBundleOf } from "./bundle-code.js";
import {
  EDGE_BODY_MAX_BYTES,
  type EdgeHttpRequest,
  type EdgeHttpResponse,
  type EdgeImageOp,
  type EdgeImageResult,
} from "./contract.js";
import { EDGE_IMAGE_MAX_PIXELS, EdgeImageError, transformImage } from "./image.js";
import { MemoryEdgeHost } from "./memory-host.js";
import { EdgeRuntime } from "./runtime.js";

const text = (res: EdgeHttpResponse) => new TextDecoder().decode(res.body);
const get = (url: string): EdgeHttpRequest => ({ method: "GET", url, headers: [] });
const PROD = { appEnv: "production" as const, vars: {} };

/** A host whose image operations wait until the test lets them go, counting those under way. */
class HeldImages extends MemoryEdgeHost {
  underWay = 0;
  most = 0;
  private readonly held: (() => void)[] = [];

  override async image(_app: string, _input: Uint8Array, _ops: EdgeImageOp[]): Promise<EdgeImageResult> {
    this.underWay++;
    this.most = Math.max(this.most, this.underWay);
    await new Promise<void>((resolve) => this.held.push(resolve));
    this.underWay--;
    return { body: new Uint8Array([1]), format: "png", width: 1, height: 1 };
  }

  releaseAll(): number {
    const n = this.held.length;
    for (const go of this.held.splice(0)) go();
    return n;
  }
}

const host = new HeldImages(async () => ({ status: 200, headers: [], body: new Uint8Array() }));
// Not a test of the CPU limit: a loaded machine must not stop these requests.
const runtime = new EdgeRuntime(host, { cpuMs: 2_000, memoryMb: 128, wallMs: 30_000 });
afterAll(() => runtime.dispose());

describe("transformImage's bounds on its output", () => {
  it("refuses a resize or a rotation past the pixel bound, and a blur past its sigma bound", async () => {
    const dot = await sharp({ create: { width: 1, height: 1, channels: 3, background: "#fff" } })
      .png()
      .toBuffer();
    await expect(transformImage(dot, [{ op: "resize", width: 8192, height: 8192 }])).rejects.toThrow(
      EdgeImageError,
    );
    await expect(transformImage(dot, [{ op: "resize", width: 8192 }])).rejects.toThrow(
      new RegExp(`more than ${EDGE_IMAGE_MAX_PIXELS} pixels`),
    );
    // 8192 x 4000 fits; turned by 45 degrees its bounding box does not.
    await expect(
      transformImage(dot, [
        { op: "resize", width: 8192, height: 4000, fit: "fill" },
        { op: "rotate", angle: 45 },
      ]),
    ).rejects.toThrow(/rotate would make/);
    await expect(transformImage(dot, [{ op: "blur", sigma: 100 }])).rejects.toThrow(/sigma/);
    // Within the bounds it still works, an enlargement included.
    expect(
      await transformImage(dot, [
        { op: "resize", width: 64 },
        { op: "blur", sigma: 2 },
      ]),
    ).toMatchObject({
      width: 64,
      height: 64,
    });
  });
});

describe("the bridge's bounds on host work", () => {
  it("refuses PBKDF2 past its iterations and RSA past its modulus, and derives within them", async () => {
    await runtime.deploy(
      "kdf",
      edgeBundleOf(`fly.http.respondWith(async (req) => {
        const iterations = Number(new URL(req.url).searchParams.get("i"));
        const tried = async (f) => { try { await f(); return "done"; } catch (e) { return String(e.message); } };
        const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("pw"), "PBKDF2", false, ["deriveBits"]);
        return Response.json({
          derive: await tried(() => crypto.subtle.deriveBits(
            { name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations }, key, 256)),
          rsa: await tried(() => crypto.subtle.generateKey(
            { name: "RSASSA-PKCS1-v1_5", modulusLength: 16384, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
            false, ["sign"])),
        });
      })`),
      PROD,
    );
    const refused = JSON.parse(text(await runtime.dispatch("kdf", get(`http://k.test/?i=${2 ** 31 - 1}`))));
    expect(refused.derive).toMatch(new RegExp(`at most ${EDGE_PBKDF2_MAX_ITERATIONS} iterations`));
    expect(refused.rsa).toMatch(/at most 4096 bits/);
    const within = JSON.parse(text(await runtime.dispatch("kdf", get("http://k.test/?i=1000"))));
    expect(within.derive).toBe("done");
  });

  it("lets an isolate have few image operations under way, and the process few at once", async () => {
    const code = `fly.http.respondWith(async () => {
      const all = await Promise.allSettled([1, 2, 3].map(() => fly.image.transform(new Uint8Array([1]), [])));
      return Response.json(all.map((r) => r.status === "fulfilled" ? "done" : r.reason.message));
    })`;
    await runtime.deploy("images-a", edgeBundleOf(code), PROD);
    await runtime.deploy("images-b", edgeBundleOf(code), PROD);
    const a = runtime.dispatch("images-a", get("http://a.test/"));
    const b = runtime.dispatch("images-b", get("http://b.test/"));
    // Four operations were let through the isolates (two each), two of them wait for a turn.
    let released = 0;
    while (released < 2 * EDGE_HEAVY_PER_ISOLATE) {
      released += host.releaseAll();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const res of [await a, await b]) {
      const outcomes = JSON.parse(text(res)) as string[];
      expect(outcomes.filter((o) => o === "done")).toHaveLength(EDGE_HEAVY_PER_ISOLATE);
      expect(outcomes.filter((o) => /QuotaExceededError/.test(o))).toHaveLength(3 - EDGE_HEAVY_PER_ISOLATE);
    }
    expect(host.most).toBe(2);
  });

  it("cancels a cleared timer in the host too, and lets at most 1,000 timers wait at once", async () => {
    await runtime.deploy(
      "timers",
      edgeBundleOf(`fly.http.respondWith(async () => {
        // Set and cleared at once: the host must not keep them (each would hold a timer for 11 days).
        for (let i = 0; i < 5000; i++) clearTimeout(setTimeout(() => {}, 1e9));
        const fired = await new Promise((resolve) => setTimeout(() => resolve("fired"), 1));
        const kept = [];
        let refused = "none";
        try { for (let i = 0; i < 1001; i++) kept.push(setTimeout(() => {}, 1e9)); } catch (e) { refused = e.message; }
        const held = kept.length;
        for (const id of kept) clearTimeout(id);
        const again = await new Promise((resolve) => setTimeout(() => resolve("fired"), 1));
        return Response.json({ fired, held, refused, again });
      })`),
      PROD,
    );
    expect(JSON.parse(text(await runtime.dispatch("timers", get("http://t.test/"))))).toEqual({
      fired: "fired",
      held: EDGE_TIMERS_MAX,
      refused: `more than ${EDGE_TIMERS_MAX} timers waiting at once`,
      again: "fired",
    });
    expect(host.logs.filter((l) => l.app === "timers" && l.level === "error")).toEqual([]);
  });

  it("refuses a response body over 10 MiB, in the prelude and, when the code bent it, in the host", async () => {
    await runtime.deploy(
      "big-body",
      edgeBundleOf(`fly.http.respondWith((req) => {
        const body = req.url.endsWith("/text") ? "x".repeat(${EDGE_BODY_MAX_BYTES} + 1) : new Uint8Array(${EDGE_BODY_MAX_BYTES} + 1);
        const res = new Response(body);
        if (req.url.endsWith("/bent")) {
          // The second look at a large array's length (the prelude's check, after it copied the body)
          // says it is empty.
          const proto = Object.getPrototypeOf(Uint8Array.prototype);
          const real = Object.getOwnPropertyDescriptor(proto, "byteLength").get;
          let looks = 0;
          Object.defineProperty(proto, "byteLength", {
            get() { const n = real.call(this); return n > ${EDGE_BODY_MAX_BYTES} && ++looks === 2 ? 0 : n; },
          });
        }
        return res;
      })`),
      PROD,
    );
    for (const path of ["/bytes", "/text"]) {
      const error = await failure(runtime.dispatch("big-body", get(`http://b.test${path}`)));
      expect([error.code, error.message]).toEqual([
        "uncaught",
        expect.stringMatching(/larger than 10485760 bytes/),
      ]);
    }
    const bent = await failure(runtime.dispatch("big-body", get("http://b.test/bent")));
    expect([bent.code, bent.message]).toEqual([
      "bad_response",
      expect.stringMatching(/larger than 10485760 bytes/),
    ]);
  });

  it("caps the console lines a request holds, and an isolate's lines per second on the host", async () => {
    await runtime.deploy(
      "chatty",
      edgeBundleOf(`fly.http.respondWith((req) => {
        if (req.url.endsWith("/held")) for (let i = 0; i < 525; i++) console.log(String(i).padEnd(16 * 1024, "x"));
        if (req.url.endsWith("/outside"))
          setTimeout(() => {
            for (let i = 0; i < 5000; i++) console.log("line " + i);
            setTimeout(() => console.log("after"), 50);
          }, 0);
        return new Response("ok");
      })`),
      PROD,
    );
    const of = () => host.logs.filter((l) => l.app === "chatty");
    // 525 lines of 16 KiB in one request: what the prelude holds (256 K characters), then a note.
    await runtime.dispatch("chatty", get("http://c.test/held"));
    const held = of();
    expect(held.length).toBeLessThan(20);
    expect(held.reduce((n, l) => n + l.message.length, 0)).toBeLessThanOrEqual(256 * 1024 + 200);
    expect(held.at(-1)?.message).toMatch(/^\d+ console lines dropped/);
    // 5,000 lines from a timer, outside any request: the host's budget lets about 2,000 through.
    await runtime.dispatch("chatty", get("http://c.test/outside"));
    await vi.waitFor(() => expect(of().some((l) => l.message === "after")).toBe(true), { timeout: 10_000 });
    const outside = of().slice(held.length);
    expect(outside.length).toBeLessThan(3_000);
    expect(outside.some((l) => l.level === "warn" && /console lines dropped/.test(l.message))).toBe(true);
  });
});
