// A proxy in front of one origin that sends plain-HTTP visitors to HTTPS first.
import { proxy } from "@fly/proxy";

let origin;

/** Whether to redirect plain HTTP: FORCE_HTTPS ("true"/"false") when set, else in production only. */
function forceHttps(env) {
  if (env.FORCE_HTTPS !== undefined) return env.FORCE_HTTPS !== "false";
  return app.env === "production";
}

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    // The scheme the visitor used, as the proxy in front of the app says.
    const scheme = request.headers.get("x-forwarded-proto") ?? url.protocol.slice(0, -1);
    if (scheme !== "https" && forceHttps(env)) {
      url.protocol = "https:";
      return new Response(null, { status: 301, headers: { location: url.href } });
    }
    origin ??= proxy(
      env.ORIGIN ?? (app.env === "development" ? "http://localhost:3001" : "http://origin.internal"),
      {
        headers: { "x-served-by": "edge-origin" },
      },
    );
    return origin(request);
  },
};
