import { type StaticsManifest, staticsManifestName } from "@hangar/config";
import { createLogger } from "@hangar/telemetry";
import { describe, expect, it } from "vitest";
import { type AppStatics, StaticFiles } from "./static-files.js";

const SET: AppStatics = {
  setId: "set1",
  statics: [{ guest_path: "/app/public", url_prefix: "/static", index_document: "index.html" }],
};
const MANIFEST: StaticsManifest = {
  image: "web@sha256:ab",
  digest: "sha256:ab",
  statics: SET.statics,
  files: [
    {
      "index.html": { sha256: "a".repeat(64), size: 10 },
      "css/site.css": { sha256: "c".repeat(64), size: 7 },
      "docs/index.html": { sha256: "d".repeat(64), size: 3 },
    },
  ],
  warnings: [],
};

/** The manifests `objects` holds, read as the proxy reads them (getBlob); counts the reads. */
function files(objects: Record<string, StaticsManifest>, now = () => 0) {
  const reads: string[] = [];
  const bucket = {
    async getBlob(name: string) {
      reads.push(name);
      const m = objects[name];
      return m ? new TextEncoder().encode(JSON.stringify(m)) : null;
    },
    async get() {
      return null;
    },
  };
  return { statics: new StaticFiles(bucket, createLogger("test"), now), reads };
}

const withManifest = () => files({ [staticsManifestName("web", "set1")]: MANIFEST });

describe("StaticFiles.answer", () => {
  it("answers a file with its type, length, ETag and object; HEAD without the object", async () => {
    const { statics } = withManifest();
    const css = await statics.answer("web", SET, "GET", "/static/css/site.css?v=1", undefined);
    expect(css).toEqual({
      status: 200,
      headers: {
        etag: `"${"c".repeat(64)}"`,
        "content-type": "text/css; charset=utf-8",
        "content-length": "7",
      },
      object: `web/set1/sha256/${"c".repeat(64)}`,
    });
    const head = await statics.answer("web", SET, "HEAD", "/static/css/site.css", undefined);
    expect(head?.status).toBe(200);
    expect(head?.object).toBeUndefined();
  });

  it("gives 304 for a matching If-None-Match (weak or in a list), 200 otherwise", async () => {
    const { statics } = withManifest();
    const etag = `"${"c".repeat(64)}"`;
    for (const header of [etag, `W/${etag}`, `"x", ${etag}`, "*"]) {
      expect((await statics.answer("web", SET, "GET", "/static/css/site.css", header))?.status).toBe(304);
    }
    expect((await statics.answer("web", SET, "GET", "/static/css/site.css", '"other"'))?.status).toBe(200);
  });

  it("gives a folder's index_document, 404 for what the image does not have, 400 for ..", async () => {
    const { statics } = withManifest();
    expect((await statics.answer("web", SET, "GET", "/static", undefined))?.object).toContain("a".repeat(64));
    expect((await statics.answer("web", SET, "GET", "/static/docs/", undefined))?.object).toContain(
      "d".repeat(64),
    );
    const missing = await statics.answer("web", SET, "GET", "/static/nope.txt", undefined);
    expect(missing?.status).toBe(404);
    expect(JSON.parse(missing?.body ?? "")).toEqual({
      error: "no file /static/nope.txt among the app's statics",
      status: "not_found",
    });
    expect((await statics.answer("web", SET, "GET", "/static/css", undefined))?.status).toBe(404);
    // Names an object has by inheritance are no files of the image.
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      for (const method of ["GET", "HEAD"]) {
        const inherited = await statics.answer("web", SET, method, `/static/${name}`, undefined);
        expect(inherited?.status, `${method} ${name}`).toBe(404);
      }
    }
    const climbing = await statics.answer("web", SET, "GET", "/static/%2e%2e/server.js", undefined);
    expect(climbing?.status).toBe(400);
    expect(JSON.parse(climbing?.body ?? "").status).toBe("bad_request");
  });

  it("leaves other methods, other paths and a set not extracted yet to the machines", async () => {
    const { statics } = withManifest();
    expect(await statics.answer("web", SET, "POST", "/static/css/site.css", undefined)).toBeUndefined();
    expect(await statics.answer("web", SET, "GET", "/api/x", undefined)).toBeUndefined();
    let t = 0;
    const empty = files({}, () => t);
    expect(await empty.statics.answer("web", SET, "GET", "/static/css/site.css", undefined)).toBeUndefined();
    // A set not there yet is asked for again after a while, not on every request.
    await empty.statics.answer("web", SET, "GET", "/static/css/site.css", undefined);
    expect(empty.reads).toHaveLength(1);
    t = 5_000;
    await empty.statics.answer("web", SET, "GET", "/static/css/site.css", undefined);
    expect(empty.reads).toHaveLength(2);
  });

  it("reads a set's manifest once", async () => {
    const { statics, reads } = withManifest();
    await statics.answer("web", SET, "GET", "/static/css/site.css", undefined);
    await statics.answer("web", SET, "GET", "/static/index.html", undefined);
    expect(reads).toHaveLength(1);
  });
});
