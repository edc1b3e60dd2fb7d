/**
 * The prelude: what a bare V8 isolate lacks of the web platform, and the app's API, made globals
 * before the app's code loads. Bundled by esbuild into one script (../prelude.ts), run once in each
 * new isolate. `__hangar_init` takes the host's bridge and the app's settings, then removes itself.
 */
import { AbortController, AbortSignal } from "abort-controller";
import { decode as atob, encode as btoa } from "base-64";
import {
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  ReadableStream,
  TransformStream,
  WritableStream,
} from "web-streams-polyfill";
import type { EdgeAppEnv, EdgeHttpRequest } from "../contract.js";
import { addEventListener, app, configureApp, dispatch, fly, registerModule, warm } from "./app.js";
import { edgeConsole } from "./console.js";
import { EdgeCryptoKey, edgeCrypto } from "./crypto.js";
import { EdgeDOMException } from "./dom-exception.js";
import { edgeFetch } from "./fetch.js";
import { EdgeHeaders } from "./headers.js";
import { type HostReference, setHost } from "./host.js";
import { EdgeRequest } from "./request.js";
import { EdgeResponse } from "./response.js";
import { TextDecoder, TextEncoder } from "./text.js";
import { clearTimer, queueMicrotask, setInterval, setTimeout } from "./timers.js";
import { URL, URLSearchParams } from "./url.js";

const globals: Record<string, unknown> = {
  AbortController,
  AbortSignal,
  atob,
  btoa,
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  ReadableStream,
  TransformStream,
  WritableStream,
  URL,
  URLSearchParams,
  TextEncoder,
  TextDecoder,
  Headers: EdgeHeaders,
  Request: EdgeRequest,
  Response: EdgeResponse,
  DOMException: EdgeDOMException,
  CryptoKey: EdgeCryptoKey,
  crypto: edgeCrypto,
  fetch: edgeFetch,
  console: edgeConsole,
  setTimeout,
  setInterval,
  clearTimeout: clearTimer,
  clearInterval: clearTimer,
  queueMicrotask,
  addEventListener,
  fly,
  app,
  self: globalThis,
};

for (const [name, value] of Object.entries(globals)) {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

/** What the host calls once the prelude ran: the entry points it keeps references to. */
export interface IsolateEntry {
  dispatch(req: EdgeHttpRequest): Promise<unknown>;
  registerModule(namespace: Record<string, unknown>): void;
}

// The host runs it once, right after the prelude, before anything else (isolate-pool.ts).
Object.defineProperty(globalThis, "__hangar_warm", {
  configurable: true,
  value(): Promise<void> {
    delete (globalThis as { __hangar_warm?: unknown }).__hangar_warm;
    return warm();
  },
});

Object.defineProperty(globalThis, "__hangar_init", {
  configurable: true,
  value(bridge: HostReference, name: string, env: EdgeAppEnv): IsolateEntry {
    delete (globalThis as { __hangar_init?: unknown }).__hangar_init;
    setHost(bridge);
    configureApp(name, env);
    return { dispatch, registerModule };
  },
});
