import { describe, expect, it } from "vitest";
import { applyResponseRules, responseRules } from "./response-headers.js";

const config = (response: unknown, handlers = ["http"]) => ({
  services: [{ internal_port: 8080, ports: [{ port: 80, handlers, http_options: { response } }] }],
});

describe("responseRules", () => {
  it("reads the http port's response headers: strings, numbers and lists set, false removes", () => {
    const rules = responseRules(
      JSON.stringify(
        config({
          headers: { "X-Frame-Options": "DENY", "Max-Age": 60, Link: ["<a>", "<b>"], Server: false },
        }),
      ),
    );
    expect(rules?.set).toEqual(["X-Frame-Options", "DENY", "Max-Age", "60", "Link", "<a>", "Link", "<b>"]);
    expect([...(rules?.drop ?? [])]).toEqual(["x-frame-options", "max-age", "link", "server"]);
    expect(rules?.pristine).toBe(false);
  });

  it("leaves out names and values a header cannot carry, and gives nothing for a config without rules", () => {
    const rules = responseRules(
      config({ headers: { "Bad Name": "x", "X-Bad": "a\r\nInjected: 1", "X-Ok": "y" } }),
    );
    expect(rules?.set).toEqual(["X-Ok", "y"]);
    expect(responseRules(config(undefined))).toBeUndefined();
    expect(responseRules({ services: [] })).toBeUndefined();
    expect(responseRules("not json")).toBeUndefined();
    expect(responseRules(config({ pristine: true }))?.pristine).toBe(true);
    // The headers that frame the response stay the proxy's and the machine's.
    const framing = responseRules(
      config({
        headers: { "Content-Length": "2", "Transfer-Encoding": "chunked", Connection: false, "X-A": "b" },
      }),
    );
    expect(framing?.set).toEqual(["X-A", "b"]);
    expect([...(framing?.drop ?? [])]).toEqual(["x-a"]);
  });
});

describe("applyResponseRules", () => {
  it("drops the machine's headers of the names set or removed (any case), then sets", () => {
    const headers = ["x-frame-options", "SAMEORIGIN", "Server", "gunicorn", "Content-Type", "text/html"];
    const rules = responseRules(config({ headers: { "X-Frame-Options": "DENY", Server: false } }));
    if (!rules) throw new Error("no rules");
    applyResponseRules(headers, rules);
    expect(headers).toEqual(["Content-Type", "text/html", "X-Frame-Options", "DENY"]);
  });
});
