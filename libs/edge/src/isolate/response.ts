/** Response: a status, headers and a body; Response.json, Response.redirect and Response.error. */

import { type BodyInitLike, EdgeBody, extractBody } from "./body.js";
import { EdgeHeaders, type HeadersInitLike } from "./headers.js";
import { URL } from "./url.js";

export interface ResponseInitLike {
  status?: number;
  statusText?: string;
  headers?: HeadersInitLike;
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

let setOrigin: (response: EdgeResponse, url: string, type: string) => void;

export class EdgeResponse extends EdgeBody {
  readonly #status: number;
  readonly #statusText: string;
  readonly #headers: EdgeHeaders;
  #url = "";
  #type = "default";

  static {
    setOrigin = (response, url, type) => {
      response.#url = url;
      response.#type = type;
    };
  }

  constructor(body?: BodyInitLike, init: ResponseInitLike = {}) {
    const status = init.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 599)
      throw new RangeError(`a Response's status must be 200 to 599, not ${status}`);
    const extracted = extractBody(body);
    if (extracted.source !== null && NULL_BODY_STATUSES.has(status))
      throw new TypeError(`a ${status} response cannot have a body`);
    super(extracted.source);
    this.#status = status;
    this.#statusText = init.statusText ?? "";
    this.#headers = new EdgeHeaders(init.headers);
    if (extracted.contentType !== undefined && !this.#headers.has("content-type"))
      this.#headers.set("content-type", extracted.contentType);
  }

  static json(data: unknown, init: ResponseInitLike = {}): EdgeResponse {
    const headers = new EdgeHeaders(init.headers);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    return new EdgeResponse(JSON.stringify(data), { ...init, headers });
  }

  static redirect(url: string | URL, status = 302): EdgeResponse {
    if (!REDIRECT_STATUSES.has(status)) throw new RangeError(`${status} is not a redirect status`);
    return new EdgeResponse(null, { status, headers: { location: new URL(String(url)).href } });
  }

  static error(): EdgeResponse {
    const response = new EdgeResponse(null, { status: 200 });
    setOrigin(response, "", "error");
    return response;
  }

  get status(): number {
    return this.#type === "error" ? 0 : this.#status;
  }
  get statusText(): string {
    return this.#statusText;
  }
  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }
  get headers(): EdgeHeaders {
    return this.#headers;
  }
  get url(): string {
    return this.#url;
  }
  get type(): string {
    return this.#type;
  }
  get redirected(): boolean {
    return false;
  }

  clone(): EdgeResponse {
    const copy = new EdgeResponse(this.cloneSource(), {
      status: this.#status,
      statusText: this.#statusText,
      headers: this.#headers,
    });
    setOrigin(copy, this.#url, this.#type);
    return copy;
  }

  get [Symbol.toStringTag](): string {
    return "Response";
  }
}

/** A response that came back from a fetch: its url set and its type "basic". */
export function fetchedResponse(
  body: Uint8Array,
  init: { status: number; statusText?: string; headers: [string, string][] },
  url: string,
): EdgeResponse {
  // A status a Response cannot carry (the host never gives one) is an upstream fault to the app.
  const status = init.status < 200 || init.status > 599 ? 502 : init.status;
  const response = new EdgeResponse(NULL_BODY_STATUSES.has(status) ? null : body, {
    status,
    statusText: init.statusText ?? "",
    headers: init.headers,
  });
  setOrigin(response, url, "basic");
  return response;
}
