/**
 * URL and URLSearchParams from core-js (WHATWG URL parsing, punycode hosts): it loads in a few ms,
 * where whatwg-url's UTS #46 table took 60-90 ms of every new isolate (docs/edge.md).
 */
import CoreURL from "core-js-pure/actual/url/index.js";
import CoreURLSearchParams from "core-js-pure/actual/url-search-params/index.js";

export const URL = CoreURL as typeof globalThis.URL;
export type URL = globalThis.URL;
export const URLSearchParams = CoreURLSearchParams as typeof globalThis.URLSearchParams;
export type URLSearchParams = globalThis.URLSearchParams;
