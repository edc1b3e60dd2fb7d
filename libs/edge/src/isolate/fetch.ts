/** fetch(): the request goes whole to the host (EdgeHost.fetch), its answer comes back whole. */
import type { EdgeHttpResponse } from "../contract.js";
import { bodyBytes } from "./body.js";
import { EdgeDOMException } from "./dom-exception.js";
import { headerList } from "./headers.js";
import { callHost, tellHost } from "./host.js";
import { EdgeRequest, type RequestInitLike } from "./request.js";
import { type EdgeResponse, fetchedResponse } from "./response.js";

let nextFetch = 1;

export async function edgeFetch(input: string | EdgeRequest, init?: RequestInitLike): Promise<EdgeResponse> {
  const request = new EdgeRequest(input, init);
  const signal = request.signal;
  if (signal.aborted) throw new EdgeDOMException("the fetch was aborted", "AbortError");
  const body = await bodyBytes(request);
  const id = nextFetch++;
  let abort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    abort = () => {
      tellHost("abortFetch", id);
      reject(new EdgeDOMException("the fetch was aborted", "AbortError"));
    };
    signal.addEventListener("abort", abort);
  });
  try {
    const answer = callHost("fetch", id, {
      method: request.method,
      url: request.url,
      headers: headerList(request.headers),
      ...(body === undefined ? {} : { body }),
    }).then(
      (value) => value as EdgeHttpResponse,
      (error: unknown) => {
        throw new TypeError(`fetch failed: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
    const res = await Promise.race([answer, aborted]);
    return fetchedResponse(res.body, res, request.url);
  } finally {
    if (abort !== undefined) signal.removeEventListener("abort", abort);
  }
}
