/**
 * The app's API (fly.http.respondWith, `export default { fetch }`, addEventListener("fetch"), app.env,
 * env) and the dispatch the host calls with each request.
 */
import type {
  EdgeAppEnv,
  EdgeErrorCode,
  EdgeHttpRequest,
  EdgeHttpResponse,
  EdgeLogLevel,
} from "../contract.js";
import { bodyBytes } from "./body.js";
import { cache } from "./cache.js";
import { reportError, requestEnded, requestStarted } from "./console.js";
import { EdgeHeaders, headerList } from "./headers.js";
import { image } from "./image.js";
import { type EdgeRequest, requestFromHost } from "./request.js";
import { EdgeResponse } from "./response.js";
import { TextDecoder, TextEncoder } from "./text.js";
import { URL } from "./url.js";

type Handler = (request: EdgeRequest, env: Record<string, string>, ctx: ExecutionContext) => unknown;

interface ExecutionContext {
  waitUntil(promise: unknown): void;
}

/** What dispatch answers when the code gave no response: the host turns it into an EdgeError. */
export interface DispatchFailure {
  error: EdgeErrorCode;
  message: string;
}

/** A dispatch's answer, with the console lines written while it ran. */
export type DispatchAnswer = (EdgeHttpResponse | DispatchFailure) & { logs: [EdgeLogLevel, string][] };

let respondWith: Handler | undefined;
let moduleHandler: { fetch: Handler } | undefined;
const fetchListeners: ((event: FetchEvent) => void)[] = [];
let appEnv: Readonly<Record<string, string>> = Object.freeze({});

class FetchEvent {
  #response: unknown;
  #answered = false;
  readonly type = "fetch";
  constructor(
    readonly request: EdgeRequest,
    private readonly ctx: ExecutionContext,
  ) {}
  respondWith(response: unknown): void {
    if (this.#answered) throw new Error("respondWith was already called");
    this.#answered = true;
    this.#response = response;
  }
  waitUntil(promise: unknown): void {
    this.ctx.waitUntil(promise);
  }
  static answer(event: FetchEvent): { answered: boolean; response: unknown } {
    return { answered: event.#answered, response: event.#response };
  }
}

export const fly = Object.freeze({
  http: Object.freeze({
    respondWith(handler: Handler): void {
      if (typeof handler !== "function") throw new TypeError("fly.http.respondWith needs a function");
      respondWith = handler;
    },
  }),
  cache: Object.freeze(cache),
  image: Object.freeze(image),
});

export const app = { name: "", env: "production" as EdgeAppEnv["appEnv"] };

export function addEventListener(type: string, listener: (event: FetchEvent) => void): void {
  if (type === "fetch" && typeof listener === "function") fetchListeners.push(listener);
}

/** Sets what the app sees of where it runs (before its code loads). */
export function configureApp(name: string, env: EdgeAppEnv): void {
  app.name = name;
  app.env = env.appEnv;
  Object.freeze(app);
  appEnv = Object.freeze({ ...env.vars });
}

/** Takes the app's module namespace: its default export's fetch, when it has one. */
export function registerModule(namespace: Record<string, unknown>): void {
  const main = namespace.default as { fetch?: unknown } | undefined;
  if (typeof main === "object" && main !== null && typeof main.fetch === "function")
    moduleHandler = main as { fetch: Handler };
}

export function hasHandler(): boolean {
  return moduleHandler !== undefined || respondWith !== undefined || fetchListeners.length > 0;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return `a thrown ${typeof error}: ${String(error)}`;
}

async function handle(request: EdgeRequest, ctx: ExecutionContext): Promise<unknown> {
  if (moduleHandler !== undefined) return moduleHandler.fetch(request, appEnv, ctx);
  if (respondWith !== undefined) return respondWith(request, appEnv, ctx);
  const event = new FetchEvent(request, ctx);
  for (const listener of fetchListeners) {
    listener(event);
    if (FetchEvent.answer(event).answered) return FetchEvent.answer(event).response;
  }
  throw new Error("no fetch listener called event.respondWith");
}

/** Runs the app's handler on one request; a failure is answered as a DispatchFailure, never thrown. */
export async function dispatch(req: EdgeHttpRequest): Promise<DispatchAnswer> {
  requestStarted();
  let answer: EdgeHttpResponse | DispatchFailure;
  try {
    answer = await respond(req);
  } catch (error) {
    answer = { error: "uncaught", message: describe(error) };
  }
  return { ...answer, logs: requestEnded() };
}

async function respond(req: EdgeHttpRequest): Promise<EdgeHttpResponse | DispatchFailure> {
  if (!hasHandler())
    return {
      error: "no_handler",
      message: "the app registered no handler (fly.http.respondWith or export default { fetch })",
    };
  return respondBy(req, handle);
}

/**
 * Runs the prelude's request path once before the isolate serves, with a handler of its own that
 * does what apps commonly do (headers, a URL, a body read, JSON and text responses, a clone): V8
 * compiles the prelude's functions lazily, on first call, so an app's first request would otherwise
 * pay for it (11-59 ms of CPU on a busy host, against a few ms later). Calls nothing of the host.
 */
export async function warm(): Promise<void> {
  const req: EdgeHttpRequest = {
    method: "POST",
    url: "http://warm.invalid/path?query=1",
    headers: [
      ["content-type", "application/json"],
      ["x-warm", "1"],
    ],
    body: new TextEncoder().encode('{"warm":true}'),
  };
  const answers = [
    await respondBy(req, async (request) => {
      const url = new URL(request.url);
      const body = (await request.clone().json()) as unknown;
      const headers = new EdgeHeaders(request.headers);
      headers.set("x-path", url.pathname + url.searchParams.get("query"));
      return EdgeResponse.json({ body, text: await request.text(), method: request.method }, { headers });
    }),
    await respondBy({ method: "GET", url: req.url, headers: [] }, async (request) => {
      const bytes = new Uint8Array(
        await new EdgeResponse(request.headers.get("x-none") ?? "x").arrayBuffer(),
      );
      return new EdgeResponse(new TextDecoder().decode(bytes), { status: 201, headers: { "x-warm": "1" } });
    }),
  ];
  for (const answer of answers)
    if ("error" in answer) throw new Error(`warming the prelude failed: ${answer.message}`);
}

async function respondBy(
  req: EdgeHttpRequest,
  handle: (request: EdgeRequest, ctx: ExecutionContext) => unknown,
): Promise<EdgeHttpResponse | DispatchFailure> {
  const hasBody = req.body !== undefined && req.method !== "GET" && req.method !== "HEAD";
  const request = requestFromHost(req.url, {
    method: req.method,
    headers: req.headers,
    ...(hasBody ? { body: req.body } : {}),
  });
  const ctx: ExecutionContext = {
    waitUntil(promise) {
      Promise.resolve(promise).catch(reportError);
    },
  };
  let response: unknown;
  try {
    response = await handle(request, ctx);
  } catch (error) {
    return { error: "uncaught", message: describe(error) };
  }
  if (!(response instanceof EdgeResponse))
    return {
      error: "bad_response",
      message: `the handler answered ${response === null ? "null" : typeof response}, not a Response`,
    };
  if (response.type === "error")
    return { error: "bad_response", message: "the handler answered Response.error()" };
  try {
    const body = (await bodyBytes(response)) ?? new Uint8Array(0);
    return {
      status: response.status,
      statusText: response.statusText,
      headers: headerList(response.headers),
      body,
    };
  } catch (error) {
    return { error: "uncaught", message: `reading the response body: ${describe(error)}` };
  }
}
