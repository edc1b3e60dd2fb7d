import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { hostOf, refusedLiteral, webhookLookup } from "./targets.js";

/** What one POST came to: the HTTP status (0 when none came) or the error, and how long it took. */
export interface SendOutcome {
  statusCode: number;
  error: string;
  durationMs: number;
}

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

/** Bytes of a receiver's answer read (then dropped): enough to finish a small response cleanly. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * POSTs a body to a webhook URL with its headers. Never throws: any failure (refused target, DNS,
 * connection, timeout, a 3xx, which is not followed) is an outcome the caller records.
 */
export function postDelivery(
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: SendOptions,
): Promise<SendOutcome> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (statusCode: number, error: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ statusCode, error, durationMs: took() });
    };
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return finish(0, "not a URL");
    }
    const literal = refusedLiteral(hostOf(target), opts.allowPrivate);
    if (literal) return finish(0, literal.message);
    const lookup = webhookLookup(opts.allowPrivate);
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(target, {
      method: "POST",
      headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
      ...(lookup ? { lookup } : {}),
      agent: false,
    });
    timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    req.on("error", (err) => finish(0, err.message));
    req.on("response", (res) => {
      let read = 0;
      res.on("data", (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_ANSWER_BYTES) res.destroy();
      });
      const status = res.statusCode ?? 0;
      res.on("end", () => finish(status, ""));
      res.on("close", () => finish(status, ""));
      res.on("error", () => finish(status, ""));
    });
    req.end(body);
  });
}
