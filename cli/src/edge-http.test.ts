import { EdgeError } from "@hangar/edge";
import { describe, expect, it } from "vitest";
import { dispatchOrError, edgeErrorResponse, fromWebRequest, toWebResponse } from "./edge-http.js";

describe("edge requests and responses in hangar edge test and dev", () => {
  it("a bare path goes to http://<app>.test, Host is set from the URL, the body is carried whole", async () => {
    const req = await fromWebRequest("shop", "/cart?id=1", {
      method: "POST",
      body: "x=1",
      headers: { "X-A": "b" },
    });
    expect(req.url).toBe("http://shop.test/cart?id=1");
    expect(req.method).toBe("POST");
    expect(req.headers).toContainEqual(["host", "shop.test"]);
    expect(req.headers).toContainEqual(["x-a", "b"]);
    expect(new TextDecoder().decode(req.body)).toBe("x=1");
    const get = await fromWebRequest(
      "shop",
      new Request("https://www.example.com/", { headers: { host: "alias" } }),
    );
    expect(get.headers.filter(([name]) => name === "host")).toEqual([["host", "alias"]]);
    expect(get.body).toBeUndefined();
  });

  it("a response keeps status, headers and body; a null-body status gets no body", async () => {
    const res = toWebResponse({
      status: 201,
      statusText: "Created",
      headers: [["x-b", "1"]],
      body: new TextEncoder().encode("made"),
    });
    expect([res.status, res.statusText, res.headers.get("x-b"), await res.text()]).toEqual([
      201,
      "Created",
      "1",
      "made",
    ]);
    expect(toWebResponse({ status: 304, headers: [], body: new Uint8Array() }).status).toBe(304);
  });

  it("the code's failure answers as the proxy does; any other error is thrown", async () => {
    const failing = (err: Error) => ({ dispatch: () => Promise.reject(err) }) as never;
    const res = await dispatchOrError(
      failing(new EdgeError("cpu_limit", "app: a request used more than 50 ms of CPU")),
      "app",
      { method: "GET", url: "http://app.test/", headers: [] },
    );
    expect(res.status).toBe(503);
    expect(JSON.parse(new TextDecoder().decode(res.body))).toEqual({
      error: "app: a request used more than 50 ms of CPU",
      status: 503,
      code: "cpu_limit",
    });
    expect(edgeErrorResponse(new EdgeError("not_deployed", "gone")).status).toBe(404);
    await expect(
      dispatchOrError(failing(new Error("broken")), "app", { method: "GET", url: "http://a/", headers: [] }),
    ).rejects.toThrow("broken");
  });
});
