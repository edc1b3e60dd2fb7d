// The router alone, against a plain TCP echo server standing in for postgres: forwarding, a closed
// connection when no primary is known, and connections to an old target closed when it changes.
import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort } from "@hangar/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Router } from "../src/router.js";

let echo: Server;
let router: Router;
let routerPort: number;

beforeAll(async () => {
  const pgPort = await freePort();
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(pgPort, "127.0.0.1", resolve));
  router = new Router(pgPort);
  routerPort = await freePort();
  await router.listen("127.0.0.1", routerPort);
});

afterAll(async () => {
  await router?.close();
  await new Promise((resolve) => echo?.close(resolve));
});

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port: routerPort }, () => resolve(s));
    s.once("error", reject);
  });
}

const closed = (s: Socket) => new Promise<void>((resolve) => s.once("close", () => resolve()));

it("closes a connection at once when no primary is known", async () => {
  router.setTarget(undefined);
  const s = await open();
  s.on("error", () => undefined);
  await closed(s);
});

it("forwards to the target and closes those connections when the target changes", async () => {
  router.setTarget({ id: "m1", address: "127.0.0.1" });
  const s = await open();
  const echoed = new Promise<string>((resolve) => s.once("data", (b: Buffer) => resolve(b.toString())));
  s.write("ping");
  expect(await echoed).toBe("ping");
  const gone = closed(s);
  router.setTarget({ id: "m2", address: "127.0.0.2" });
  await gone;
});
