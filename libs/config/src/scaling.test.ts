import { describe, expect, it } from "vitest";
import { scalingSettings } from "./scaling.js";

const http = { port: 80, handlers: ["http"] };

describe("scalingSettings", () => {
  it("uses Fly's defaults for a service that says nothing", () => {
    expect(scalingSettings({ services: [{ internal_port: 8080, ports: [http] }] })).toEqual({
      type: "connections",
      softLimit: 20,
      hardLimit: undefined,
      autostart: true,
      autostop: "off",
      minMachinesRunning: 0,
      maxMachinesRunning: 20,
    });
  });

  it("reads the http service's limits and autostop from a machine config's JSON", () => {
    const config = {
      services: [
        { internal_port: 9000, ports: [{ port: 9000 }], concurrency: { soft_limit: 3 } },
        {
          internal_port: 8080,
          ports: [http],
          concurrency: { type: "requests", soft_limit: 30, hard_limit: 25 },
          autostop: "suspend",
          autostart: false,
          min_machines_running: 2,
          max_machines_running: 8,
        },
      ],
    };
    expect(scalingSettings(JSON.stringify(config))).toEqual({
      type: "requests",
      softLimit: 25,
      hardLimit: 25,
      autostart: false,
      autostop: "suspend",
      minMachinesRunning: 2,
      maxMachinesRunning: 8,
    });
  });

  it("takes the old boolean autostop and keeps max at least min", () => {
    const s = scalingSettings({
      services: [{ ports: [http], autostop: true, min_machines_running: 30, max_machines_running: 4 }],
    });
    expect(s?.autostop).toBe("stop");
    expect(s?.maxMachinesRunning).toBe(30);
  });

  it("has nothing to say about a machine without services or with a broken config", () => {
    expect(scalingSettings({ image: "x" })).toBeUndefined();
    expect(scalingSettings("{not json")).toBeUndefined();
    expect(scalingSettings({ services: [] })).toBeUndefined();
  });
});
