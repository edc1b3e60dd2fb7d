/** Request: a method, an absolute URL, headers, a body and an abort signal. */
import { AbortController, type AbortSignal } from "abort-controller";
import { type BodyInitLike, EdgeBody, extractBody } from "./body.js";
import { EdgeHeaders, type HeadersInitLike } from "./headers.js";
import { URL } from "./url.js";

export interface RequestInitLike {
  method?: string;
  headers?: HeadersInitLike;
  body?: BodyInitLike;
  signal?: AbortSignal | null;
  redirect?: "follow" | "manual" | "error";
}

const NORMALISED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function requestMethod(method: string): string {
  if (!METHOD.test(method)) throw new TypeError(`invalid method: ${JSON.stringify(method)}`);
  const upper = method.toUpperCase();
  if (upper === "CONNECT" || upper === "TRACE" || upper === "TRACK")
    throw new TypeError(`method ${upper} is forbidden`);
  return NORMALISED_METHODS.has(upper) ? upper : method;
}

/** Set while requestFromHost constructs: the URL is the host's, already parsed and serialised. */
let hostUrl = false;

export class EdgeRequest extends EdgeBody {
  readonly #method: string;
  readonly #url: string;
  readonly #headers: EdgeHeaders;
  readonly #signal: AbortSignal;
  readonly #redirect: "follow" | "manual" | "error";

  constructor(input: string | URL | EdgeRequest, init: RequestInitLike = {}) {
    const from = input instanceof EdgeRequest ? input : undefined;
    const method = requestMethod(init.method ?? from?.method ?? "GET");
    const extracted =
      init.body !== undefined
        ? extractBody(init.body)
        : { source: from === undefined ? null : from.takeSource(), contentType: undefined };
    if (extracted.source !== null && (method === "GET" || method === "HEAD"))
      throw new TypeError(`a ${method} request cannot have a body`);
    super(extracted.source);
    this.#method = method;
    this.#url = from !== undefined ? from.url : hostUrl ? String(input) : new URL(String(input)).href;
    this.#headers = new EdgeHeaders(init.headers ?? from?.headers);
    if (extracted.contentType !== undefined && !this.#headers.has("content-type"))
      this.#headers.set("content-type", extracted.contentType);
    this.#signal = init.signal ?? from?.signal ?? new AbortController().signal;
    this.#redirect = init.redirect ?? from?.redirect ?? "follow";
  }

  get method(): string {
    return this.#method;
  }
  get url(): string {
    return this.#url;
  }
  get headers(): EdgeHeaders {
    return this.#headers;
  }
  get signal(): AbortSignal {
    return this.#signal;
  }
  get redirect(): "follow" | "manual" | "error" {
    return this.#redirect;
  }
  get cache(): string {
    return "default";
  }
  get credentials(): string {
    return "same-origin";
  }
  get mode(): string {
    return "cors";
  }
  get referrer(): string {
    return "";
  }
  get integrity(): string {
    return "";
  }
  get keepalive(): boolean {
    return false;
  }

  clone(): EdgeRequest {
    const source = this.cloneSource();
    return new EdgeRequest(this.#url, {
      method: this.#method,
      headers: this.#headers,
      body: source,
      signal: this.#signal,
      redirect: this.#redirect,
    });
  }

  get [Symbol.toStringTag](): string {
    return "Request";
  }
}

/**
 * A request as the host hands it in: its URL was parsed and serialised by the host's URL (Node's,
 * ada), so it is not parsed again here (core-js's parser is most of a hello world's time).
 */
export function requestFromHost(url: string, init: RequestInitLike): EdgeRequest {
  hostUrl = true;
  try {
    return new EdgeRequest(url, init);
  } finally {
    hostUrl = false;
  }
}
