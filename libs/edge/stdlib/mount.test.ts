import { describe, expect, it } from "vitest";
import { mount } from "./mount.js";

/** A handler that answers its name and the URL it got. */
const named = (name: string) => async (req: Request) =>
  new Response(JSON.stringify({ name, url: req.url, method: req.method, body: await req.text() }));

const router = mount({ "/": named("root"), "/blog": named("blog"), "/blog/admin/": named("admin") });

async function route(url: string, init?: RequestInit): Promise<{ name: string; url: string; body: string }> {
  return (await router(new Request(url, init))).json() as Promise<{
    name: string;
    url: string;
    body: string;
  }>;
}

describe("mount", () => {
  it("sends a path to the longest mount that prefixes it, with the mount path taken off", async () => {
    expect(await route("http://site.test/blog/admin/users?x=1")).toMatchObject({
      name: "admin",
      url: "http://site.test/users?x=1",
    });
    expect(await route("http://site.test/blog/post")).toMatchObject({
      name: "blog",
      url: "http://site.test/post",
    });
    expect(await route("http://site.test/blog")).toMatchObject({ name: "blog", url: "http://site.test/" });
    expect(await route("http://site.test/about")).toMatchObject({
      name: "root",
      url: "http://site.test/about",
    });
  });

  it("matches whole segments: /blogger is not under /blog", async () => {
    expect(await route("http://site.test/blogger")).toMatchObject({
      name: "root",
      url: "http://site.test/blogger",
    });
  });

  it("keeps the method and body of a rebased request", async () => {
    expect(await route("http://site.test/blog/new", { method: "POST", body: "text" })).toMatchObject({
      name: "blog",
      method: "POST",
      body: "text",
    });
  });

  it("answers 404 for a path no mount takes, and match() says which mount a path goes to", async () => {
    const docs = mount({ "/docs": named("docs") });
    expect((await docs(new Request("http://site.test/other"))).status).toBe(404);
    expect(docs.match("/docs/a")?.path).toBe("/docs");
    expect(docs.match("/other")).toBeUndefined();
  });

  it("refuses a mount path without a leading slash", () => {
    expect(() => mount({ blog: named("blog") })).toThrow(/must start with \//);
  });
});
