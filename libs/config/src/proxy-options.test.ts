import { describe, expect, it } from "vitest";
import { proxyHttpOptions } from "./proxy-options.js";

const service = (ports: unknown[]) => ({ internal_port: 8080, ports });
const http = (http_options: unknown, handlers = ["http"]) => ({ port: 80, handlers, http_options });

describe("proxyHttpOptions", () => {
  it("reads compress, idle_timeout and the response rules of the routed service's http port", () => {
    const config = {
      services: [
        service([{ port: 5432, handlers: [] }]),
        service([
          { port: 8443, handlers: ["tls"], http_options: { compress: false } },
          http({ compress: true, idle_timeout: 600, response: { pristine: true } }),
        ]),
      ],
    };
    const options = proxyHttpOptions(JSON.stringify(config));
    expect(options.compress).toBe(true);
    expect(options.idleTimeout).toBe(600);
    expect(options.response?.pristine).toBe(true);
  });

  it("gives nothing for options not set, compress = false and idle_timeout = 0", () => {
    expect(proxyHttpOptions({ services: [service([http(undefined)])] })).toEqual({});
    expect(proxyHttpOptions({ services: [service([http({ compress: false, idle_timeout: 0 })])] })).toEqual(
      {},
    );
    expect(proxyHttpOptions({ services: [] })).toEqual({});
    expect(proxyHttpOptions("not json")).toEqual({});
  });
});
