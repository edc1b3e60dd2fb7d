import { describe, expect, it } from "vitest";
import {
  guestPathParts,
  imageStaticsOf,
  lookupStatic,
  type MachineStatic,
  staticContentType,
  staticsSetId,
} from "./statics.js";

const STATICS: MachineStatic[] = [
  { guest_path: "/app/public", url_prefix: "/static", index_document: "index.html" },
  { guest_path: "/app/public/img", url_prefix: "/static/img/" },
];

describe("lookupStatic", () => {
  it("maps a path under a url_prefix to the file under its guest_path, the longest prefix first", () => {
    expect(lookupStatic(STATICS, "/static/css/site.css?v=3")).toEqual({
      kind: "file",
      index: 0,
      path: "css/site.css",
      indexDocument: "index.html",
    });
    expect(lookupStatic(STATICS, "/static/img/logo.png")).toMatchObject({ index: 1, path: "logo.png" });
    expect(lookupStatic(STATICS, "/static")).toMatchObject({ index: 0, path: "" });
    expect(lookupStatic(STATICS, "/static/")).toMatchObject({ index: 0, path: "" });
  });

  it("leaves paths outside every prefix to the machines, a prefix matching whole segments only", () => {
    expect(lookupStatic(STATICS, "/")).toEqual({ kind: "none" });
    expect(lookupStatic(STATICS, "/staticfiles/a.txt")).toEqual({ kind: "none" });
    expect(lookupStatic(STATICS, "/api/static/a.txt")).toEqual({ kind: "none" });
  });

  it("decodes each segment on its own and drops . and empty segments", () => {
    expect(lookupStatic(STATICS, "/static/a%20b.txt")).toMatchObject({ path: "a b.txt" });
    expect(lookupStatic(STATICS, "/static/./css//site.css")).toMatchObject({ path: "css/site.css" });
  });

  it.each([
    "/static/../etc/passwd",
    "/static/css/../../secret",
    "/static/%2e%2e/etc/passwd",
    "/static/%2E%2E/etc/passwd",
    "/static/.%2e/x",
    "/static/..%2fetc%2fpasswd",
    "/static/a%2fb",
    "/static/a%5c..%5cb",
    "/static/a%00.txt",
    "/static/%zz",
  ])("refuses %s", (path) => {
    expect(lookupStatic(STATICS, path).kind).toBe("refused");
  });

  it("serves from the root with a url_prefix of /", () => {
    expect(lookupStatic([{ guest_path: "/srv", url_prefix: "/" }], "/a/b.js")).toMatchObject({
      kind: "file",
      path: "a/b.js",
    });
  });
});

describe("imageStaticsOf", () => {
  it("takes the image and the statics the proxy can serve; a tigris_bucket one is left out", () => {
    expect(
      imageStaticsOf({
        image: "hello@sha256:ab",
        statics: [
          { guest_path: "/app/public", url_prefix: "/static", index_document: "" },
          { guest_path: "/x", url_prefix: "/b", tigris_bucket: "bucket" },
        ],
      }),
    ).toEqual({ image: "hello@sha256:ab", statics: [{ guest_path: "/app/public", url_prefix: "/static" }] });
    expect(imageStaticsOf({ image: "hello", statics: [] })).toBeUndefined();
    expect(imageStaticsOf({ image: "hello" })).toBeUndefined();
    expect(imageStaticsOf(null)).toBeUndefined();
  });
});

describe("staticsSetId", () => {
  it("is the same for the same image and statics, and differs when either changes", () => {
    const id = staticsSetId("a@sha256:1", STATICS);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(
      staticsSetId(
        "a@sha256:1",
        STATICS.map((s) => ({ ...s })),
      ),
    ).toBe(id);
    expect(staticsSetId("a@sha256:2", STATICS)).not.toBe(id);
    expect(staticsSetId("a@sha256:1", STATICS.slice(0, 1))).not.toBe(id);
  });
});

describe("guestPathParts", () => {
  it("gives a layer's path components, refusing relative paths and ..", () => {
    expect(guestPathParts("/app/public/")).toEqual(["app", "public"]);
    expect(guestPathParts("/")).toEqual([]);
    expect(guestPathParts("app/public")).toBeUndefined();
    expect(guestPathParts("/app/../etc")).toBeUndefined();
  });
});

describe("staticContentType", () => {
  it("names common web types by extension, octet-stream otherwise", () => {
    expect(staticContentType("css/site.css")).toBe("text/css; charset=utf-8");
    expect(staticContentType("index.HTML")).toBe("text/html; charset=utf-8");
    expect(staticContentType("app.js")).toBe("text/javascript; charset=utf-8");
    expect(staticContentType("logo.svg")).toBe("image/svg+xml");
    expect(staticContentType("Makefile")).toBe("application/octet-stream");
    expect(staticContentType(".env")).toBe("application/octet-stream");
    expect(staticContentType("a.unknownext")).toBe("application/octet-stream");
  });
});
