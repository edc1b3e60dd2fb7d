import { afterEach, describe, expect, it } from "vitest";
import { type AppState, BackendPool } from "./backends.js";
import type { AppRoute, Backend } from "./route-table.js";

const a: Backend = { machineId: "a", address: "10.0.0.1", port: 8080 };
const b: Backend = { machineId: "b", address: "10.0.0.2", port: 8080 };
const c: Backend = { machineId: "c", address: "10.0.0.3", port: 8080 };

const routes = new Map<string, AppRoute>();
const pool = new BackendPool({ lookup: (app) => routes.get(app) }, 4);

afterEach(() => {
  pool.destroy();
  routes.clear();
});

function machines(state: AppState | undefined): string[] {
  return state?.backends.map((s) => s.machineId) ?? [];
}

describe("BackendPool", () => {
  it("follows the route table and keeps the state of machines that stay", () => {
    routes.set("web", { app: "web", backends: [a, b] });
    const first = pool.resolve("web");
    expect(machines(first)).toEqual(["a", "b"]);
    const stateOfB = first?.backends[1];
    stateOfB?.errors.record(0);

    routes.set("web", { app: "web", backends: [{ ...b }, c] });
    const second = pool.resolve("web");
    expect(second).toBe(first);
    expect(machines(second)).toEqual(["b", "c"]);
    expect(second?.backends[0]).toBe(stateOfB);
    expect(second?.backends[0]?.errors.read(0)).toBe(1);
  });

  it("treats a machine at a new address as a new backend", () => {
    routes.set("web", { app: "web", backends: [a] });
    const before = pool.resolve("web")?.backends[0];
    routes.set("web", { app: "web", backends: [{ ...a, port: 9090 }] });
    const after = pool.resolve("web")?.backends[0];
    expect(after).not.toBe(before);
    expect(after?.port).toBe(9090);
  });

  it("closes a removed machine's pool once its last request ends", () => {
    routes.set("web", { app: "web", backends: [a, b] });
    const state = pool.resolve("web");
    const gone = state?.backends[0];
    if (!gone) throw new Error("no backend");
    gone.inFlight++;
    let destroyed = false;
    const destroy = gone.agent.destroy.bind(gone.agent);
    gone.agent.destroy = () => {
      destroyed = true;
      destroy();
    };
    routes.set("web", { app: "web", backends: [b] });
    pool.resolve("web");
    expect(destroyed).toBe(false);
    gone.release();
    expect(destroyed).toBe(true);
  });

  it("forgets apps that are gone or have no machines, unless requests are in flight", () => {
    routes.set("web", { app: "web", backends: [a] });
    const state = pool.resolve("web");
    expect(pool.apps.has("web")).toBe(true);

    routes.set("web", { app: "web", backends: [] });
    expect(machines(pool.resolve("web"))).toEqual([]);
    expect(pool.apps.has("web")).toBe(false);

    routes.set("web", { app: "web", backends: [a] });
    const again = pool.resolve("web");
    expect(again).not.toBe(state);
    if (!again) throw new Error("no app");
    again.inFlight++;
    routes.delete("web");
    expect(pool.resolve("web")).toBeUndefined();
    expect(pool.apps.has("web")).toBe(true);
    pool.release(again);
    expect(pool.apps.has("web")).toBe(false);
  });
});
