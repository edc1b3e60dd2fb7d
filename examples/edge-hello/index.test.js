// Run with `hangar edge test` (test, dispatch and deploy are its globals).
import assert from "node:assert/strict";

test("answers Hello World to any path and method", async () => {
  for (const [path, method] of [
    ["/", "GET"],
    ["/some/where?x=1", "POST"],
  ]) {
    const res = await dispatch(`http://edge-hello.test${path}`, { method });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await res.text(), "Hello World\n");
  }
});
