import { describe, expect, it } from "vitest";
import { buildCreateMachineRequest, parseEnvPair } from "./machine-request.js";

describe("buildCreateMachineRequest", () => {
  it("sets auto_destroy for --rm, with restart policy no unless one was given", () => {
    expect(buildCreateMachineRequest({ image: "nginx", autoDestroy: true }).config).toEqual({
      image: "nginx",
      auto_destroy: true,
      restart: { policy: "no" },
    });
    expect(
      buildCreateMachineRequest({ image: "nginx", autoDestroy: true, restart: "on-failure" }).config,
    ).toEqual({
      image: "nginx",
      auto_destroy: true,
      restart: { policy: "on-failure" },
    });
  });

  it("sends only the image when nothing else is asked for", () => {
    expect(buildCreateMachineRequest({ image: "nginx" })).toEqual({ config: { image: "nginx" } });
  });

  it("maps every option onto the Fly machine config", () => {
    const body = buildCreateMachineRequest({
      image: "dir:/srv/app",
      name: "web-1",
      region: "local",
      port: 3000,
      env: { A: "1", B: "x=y" },
      cpus: 2,
      memoryMb: 512,
      cmd: "node 'server.js' --verbose",
      restart: "on-failure",
    });
    expect(body).toEqual({
      name: "web-1",
      region: "local",
      config: {
        image: "dir:/srv/app",
        env: { A: "1", B: "x=y" },
        guest: { cpus: 2, memory_mb: 512 },
        init: { cmd: ["node", "server.js", "--verbose"] },
        restart: { policy: "on-failure" },
        services: [
          {
            protocol: "tcp",
            internal_port: 3000,
            ports: [
              { port: 80, handlers: ["http"] },
              { port: 443, handlers: ["tls", "http"] },
            ],
          },
        ],
      },
    });
  });

  it("sends a partial guest when only memory is given", () => {
    expect(buildCreateMachineRequest({ image: "x", memoryMb: 256 }).config.guest).toEqual({ memory_mb: 256 });
  });
});

describe("parseEnvPair", () => {
  it("splits at the first = and allows empty values", () => {
    expect(parseEnvPair("URL=postgres://a/b?x=1")).toEqual(["URL", "postgres://a/b?x=1"]);
    expect(parseEnvPair("EMPTY=")).toEqual(["EMPTY", ""]);
  });

  it("rejects pairs without = or with a bad name", () => {
    expect(() => parseEnvPair("NOVALUE")).toThrow(/KEY=VALUE/);
    expect(() => parseEnvPair("1X=2")).toThrow(/KEY=VALUE/);
  });
});
