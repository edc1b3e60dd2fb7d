import { once } from "node:events";
import { brotliDecompressSync, constants, gunzipSync, inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  compressedHeaders,
  compressionFor,
  compressor,
  type Encoding,
  isCompressible,
  negotiateEncoding,
} from "./compress.js";

describe("negotiateEncoding", () => {
  it.each([
    ["gzip, deflate, br", "br"],
    ["gzip, deflate", "gzip"],
    ["deflate", "deflate"],
    ["GZIP", "gzip"],
    ["x-gzip", "gzip"],
    ["br;q=0, gzip", "gzip"],
    ["gzip;q=1, br;q=0.5", "gzip"],
    ["deflate;q=0.9, gzip;q=0.2", "deflate"],
    [" br ; q=0.8 , gzip;q=0.8", "br"],
    ["*", "br"],
    ["*, br;q=0", "gzip"],
    ["gzip;q=0, br;q=0, *", "deflate"],
    ["identity, gzip;q=0.1", "gzip"],
  ] as const)("%s gives %s", (accept, encoding) => {
    expect(negotiateEncoding(accept)).toBe(encoding);
  });

  it.each([
    [undefined],
    [""],
    ["identity"],
    ["*;q=0"],
    ["gzip;q=0, br;q=0.000, deflate;q=0"],
    ["gzip;q=abc"],
    ["zstd"],
  ])("%s gives none", (accept) => {
    expect(negotiateEncoding(accept)).toBeUndefined();
  });
});

describe("isCompressible", () => {
  it.each([
    "text/html; charset=utf-8",
    "TEXT/PLAIN",
    "text/css",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/ld+json",
    "application/rss+xml",
    "image/svg+xml",
    "application/wasm",
  ])("compresses %s", (type) => {
    expect(isCompressible(type)).toBe(true);
  });

  it.each([
    "text/event-stream",
    "image/png",
    "image/jpeg",
    "video/mp4",
    "audio/mpeg",
    "application/zip",
    "application/gzip",
    "application/octet-stream",
    "",
    undefined,
  ])("leaves %s alone", (type) => {
    expect(isCompressible(type)).toBe(false);
  });
});

describe("compressionFor", () => {
  const accepts = ["Accept-Encoding", "gzip, br"];
  const json = ["Content-Type", "application/json", "Content-Length", "2048"];

  it("compresses a compressible body a client accepts, in the best coding it accepts", () => {
    expect(compressionFor("GET", accepts, 200, json)).toBe("br");
    expect(compressionFor("POST", ["accept-encoding", "gzip"], 404, json)).toBe("gzip");
    // A streamed (chunked) body has no length to judge by.
    expect(compressionFor("GET", accepts, 200, ["content-type", "text/html"])).toBe("br");
    expect(
      compressionFor("GET", accepts, 200, ["Content-Type", "text/plain", "Content-Length", "1024"]),
    ).toBe("br");
    // Several Accept-Encoding headers are one list.
    expect(compressionFor("GET", ["Accept-Encoding", "identity", "accept-encoding", "gzip"], 200, json)).toBe(
      "gzip",
    );
  });

  it.each([
    ["a HEAD", "HEAD", accepts, 200, json],
    ["a 101", "GET", accepts, 101, json],
    ["a 204", "GET", accepts, 204, json],
    ["a 304", "GET", accepts, 304, json],
    ["a 206", "GET", accepts, 206, [...json, "Content-Range", "bytes 0-2047/4096"]],
    ["an encoded body", "GET", accepts, 200, [...json, "Content-Encoding", "gzip"]],
    ["no-transform", "GET", accepts, 200, [...json, "Cache-Control", "public, No-Transform"]],
    ["a short body", "GET", accepts, 200, ["Content-Type", "application/json", "Content-Length", "1023"]],
    ["an image", "GET", accepts, 200, ["Content-Type", "image/png", "Content-Length", "9000"]],
    ["no Content-Type", "GET", accepts, 200, ["Content-Length", "9000"]],
    ["a client that accepts none", "GET", [], 200, json],
  ] as const)("leaves %s alone", (_what, method, request, status, headers) => {
    expect(compressionFor(method, request, status, headers)).toBeUndefined();
  });
});

describe("compressedHeaders", () => {
  it("drops Content-Length and Accept-Ranges, weakens the ETag, adds to Vary and sets Content-Encoding", () => {
    const headers = [
      "Content-Type",
      "application/json",
      "Content-Length",
      "2048",
      "ETag",
      '"abc"',
      "Accept-Ranges",
      "bytes",
      "Vary",
      "Origin",
    ];
    compressedHeaders(headers, "br");
    expect(headers).toEqual([
      "Content-Type",
      "application/json",
      "ETag",
      'W/"abc"',
      "Vary",
      "Origin, Accept-Encoding",
      "Content-Encoding",
      "br",
    ]);
  });

  it("keeps a weak ETag and a Vary that already covers Accept-Encoding, and adds Vary when there is none", () => {
    const weak = ["etag", 'W/"abc"', "vary", "accept-encoding, Origin"];
    compressedHeaders(weak, "gzip");
    expect(weak).toEqual(["etag", 'W/"abc"', "vary", "accept-encoding, Origin", "Content-Encoding", "gzip"]);
    const star = ["Vary", "*"];
    compressedHeaders(star, "gzip");
    expect(star).toEqual(["Vary", "*", "Content-Encoding", "gzip"]);
    const none = ["Content-Type", "text/html"];
    compressedHeaders(none, "deflate");
    expect(none).toEqual([
      "Content-Type",
      "text/html",
      "Vary",
      "Accept-Encoding",
      "Content-Encoding",
      "deflate",
    ]);
  });
});

describe("compressor", () => {
  const decode: Record<Encoding, (b: Buffer, flushed: boolean) => Buffer> = {
    br: (b, flushed) =>
      brotliDecompressSync(b, flushed ? { finishFlush: constants.BROTLI_OPERATION_FLUSH } : {}),
    gzip: (b, flushed) => gunzipSync(b, flushed ? { finishFlush: constants.Z_SYNC_FLUSH } : {}),
    deflate: (b, flushed) => inflateSync(b, flushed ? { finishFlush: constants.Z_SYNC_FLUSH } : {}),
  };

  it.each(["br", "gzip", "deflate"] as const)(
    "%s: gives out each chunk written as soon as it is written, and the whole body at the end",
    async (encoding) => {
      const zip = compressor(encoding);
      const out: Buffer[] = [];
      zip.on("data", (c: Buffer) => out.push(c));
      zip.write(Buffer.from("first chunk "));
      const sofar = () => {
        try {
          return decode[encoding](Buffer.concat(out), true).toString();
        } catch {
          return "";
        }
      };
      // Nothing more is written until this chunk has come out whole: the stream is not held back.
      while (sofar() !== "first chunk ") await once(zip, "data");
      zip.end(Buffer.from("and the last"));
      await once(zip, "end");
      expect(decode[encoding](Buffer.concat(out), false).toString()).toBe("first chunk and the last");
    },
    5_000,
  );
});
