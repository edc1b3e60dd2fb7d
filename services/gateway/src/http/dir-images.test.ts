import { createLogger } from "@hangar/telemetry";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { testAuth } from "../../test/auth-fixture.js";
import { config } from "../config.js";
import { createApi } from "./api.js";
import type { MachinesBackend, MachineView } from "./backend.js";

const { auth: AUTH, token: TOKEN } = testAuth();

/** The machine routes' part of the backend: records what reached it; nothing else is called here. */
function recordingBackend(): { backend: MachinesBackend; reached: string[] } {
  const reached: string[] = [];
  const answer = (method: string) => async () => {
    reached.push(method);
    return { id: "m1" } as MachineView;
  };
  const backend = { createMachine: answer("createMachine"), updateMachine: answer("updateMachine") };
  return { backend: backend as unknown as MachinesBackend, reached };
}

function apiWith(dirImageRoots?: string[]) {
  const { backend, reached } = recordingBackend();
  const api = createApi({
    backend,
    auth: AUTH,
    logger: createLogger("test", { level: "silent" }),
    metrics: new Registry(),
    ...(dirImageRoots ? { dirImageRoots } : {}),
  });
  const send = async (path: string, config: Record<string, unknown>) => {
    const res = await api.request(path, {
      method: "POST",
      body: JSON.stringify({ config }),
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return {
    reached,
    create: (config: Record<string, unknown>) => send("/v1/apps/web/machines", config),
    update: (config: Record<string, unknown>) => send("/v1/apps/web/machines/m1", config),
  };
}

describe("HANGAR_DIR_IMAGE_ROOTS", () => {
  it("leaves dir: images off on the gateway unless set", () => {
    const key = Buffer.alloc(32, 7).toString("base64");
    expect(config.load({ HANGAR_GATEWAY_TOKEN_KEY: key }).HANGAR_DIR_IMAGE_ROOTS).toEqual([]);
    const env = { HANGAR_GATEWAY_TOKEN_KEY: key, HANGAR_DIR_IMAGE_ROOTS: "/srv/examples" };
    expect(config.load(env).HANGAR_DIR_IMAGE_ROOTS).toEqual(["/srv/examples"]);
  });
});

describe("dir: images at the Machines API", () => {
  it("are refused by default with a 400 that says how to enable them; OCI images pass", async () => {
    const api = apiWith();
    const off = {
      status: "invalid_argument",
      error:
        "dir: images are off: set HANGAR_DIR_IMAGE_ROOTS=<folder>[:<folder>...] on the gateway and host agents to run folders under those roots (development only)",
    };
    const created = await api.create({ image: "dir:/srv/examples/hello" });
    expect(created).toEqual({ status: 400, body: off });
    expect(await api.update({ image: "dir:/srv/examples/hello" })).toEqual({ status: 400, body: off });
    expect(api.reached).toEqual([]);
    expect((await api.create({ image: "nginx", init: { exec: ["/bin/sh"] } })).status).toBe(200);
    expect(api.reached).toEqual(["createMachine"]);
  });

  it("run from under an allowed root, created and updated", async () => {
    const api = apiWith(["/srv/examples"]);
    expect((await api.create({ image: "dir:/srv/examples/hello" })).status).toBe(200);
    const update = await api.update({ image: "dir:/srv/examples/hello", init: { exec: ["node", "x.js"] } });
    expect(update.status).toBe(200);
    expect(api.reached).toEqual(["createMachine", "updateMachine"]);
  });

  it("with a root allowed, refuse dir:/, a folder outside it and init.exec /bin/sh", async () => {
    const api = apiWith(["/srv/examples"]);
    const root = await api.create({ image: "dir:/" });
    expect(root.status).toBe(400);
    expect(root.body.error).toBe(
      "dir:/ is refused: a dir: image runs a folder under HANGAR_DIR_IMAGE_ROOTS, never the host's root",
    );
    const outside = await api.create({ image: "dir:/etc" });
    expect(outside.status).toBe(400);
    expect(outside.body.error).toMatch(/^dir:\/etc is not under HANGAR_DIR_IMAGE_ROOTS/);
    const shell = await api.update({
      image: "dir:/srv/examples/hello",
      init: { exec: ["/bin/sh", "-c", "id"] },
    });
    expect(shell).toEqual({
      status: 400,
      body: {
        status: "invalid_argument",
        error:
          "init.exec /bin/sh is outside HANGAR_DIR_IMAGE_ROOTS: a dir: machine runs programs by path only from under those folders (a bare name such as node is looked up inside the machine)",
      },
    });
    const climb = await api.create({ image: "dir:/srv/examples/../../etc" });
    expect(climb.status).toBe(400);
    expect(api.reached).toEqual([]);
  });
});
