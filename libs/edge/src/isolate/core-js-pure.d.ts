/** core-js-pure ships no types: its URL and URLSearchParams are the WHATWG ones (./url.ts types them). */
declare module "core-js-pure/actual/url/index.js";
declare module "core-js-pure/actual/url-search-params/index.js";
