import { type ResponseRules, responseRulesOf } from "./response-headers.js";
import { routedPort } from "./scaling.js";

/**
 * What the proxy does for an app beyond routing, from the `http_options` of the port it routes to
 * (fly.toml `[http_service.http_options]`, or a `[[services.ports]]`'s, which flyctl copies into each
 * machine service port). Each field is absent when the app does not ask for it.
 */
export interface ProxyHttpOptions {
  /** Headers set or removed on its responses (`http_options.response`). */
  response?: ResponseRules;
  /** Its responses are compressed for clients that accept it (`http_options.compress = true`). */
  compress?: true;
  /**
   * Seconds a client connection to it may stay idle before the proxy closes it
   * (`http_options.idle_timeout`); 0 is the same as not set.
   */
  idleTimeout?: number;
}

/** The proxy's options for an app, from a machine config (JSON or parsed) of its (routedPort). */
export function proxyHttpOptions(config: unknown): ProxyHttpOptions {
  const options = routedPort(config)?.http_options;
  if (!options) return {};
  const response = responseRulesOf(options.response);
  const idle = options.idle_timeout;
  return {
    ...(response ? { response } : {}),
    ...(options.compress === true ? { compress: true as const } : {}),
    ...(typeof idle === "number" && idle > 0 ? { idleTimeout: idle } : {}),
  };
}
