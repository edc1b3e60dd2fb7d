import { describe, expect, it } from "vitest";
import { reachesForeignApp } from "./image-owner.js";

const apps: Record<string, string> = { x: "org-a", redis: "org-a" };
const orgOf = (app: string) => apps[app];
const none = async () => false;

describe("reachesForeignApp", () => {
  it("refuses another org's app by any host that is not an upstream", async () => {
    expect(await reachesForeignApp("x/app:1", "org-b", orgOf, none)).toBe(true);
    expect(await reachesForeignApp("127.0.0.1:5000/x/app:1", "org-b", orgOf, none)).toBe(true);
    expect(await reachesForeignApp("redis:7", "org-b", orgOf, none)).toBe(true);
    expect(await reachesForeignApp("x/app:1", "org-a", orgOf, none)).toBe(false);
  });

  it("lets an upstream registry's ref through: it is pulled from there, never an app's image", async () => {
    const upstreams = { "127.0.0.1:5000": "http://127.0.0.1:5000" };
    expect(await reachesForeignApp("127.0.0.1:5000/x/app:1", "org-b", orgOf, none, upstreams)).toBe(false);
    expect(await reachesForeignApp("127.0.0.1:6000/x/app:1", "org-b", orgOf, none, upstreams)).toBe(true);
  });
});
