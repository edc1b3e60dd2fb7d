/** Lower-cases the proxy's domains and drops leading/trailing dots, longest first so the most specific wins. */
export function normalizeDomains(domains: readonly string[]): string[] {
  return domains
    .map((d) => d.toLowerCase().replace(/^\.+|\.+$/g, ""))
    .filter((d) => d.length > 0)
    .sort((a, b) => b.length - a.length);
}

/**
 * The app a Host header names: `<app>.<domain>[:port]` for one of `domains` (normalized), else undefined.
 * An app is one DNS label, so `a.b.<domain>` names no app.
 */
export function appFromHost(host: string | undefined, domains: readonly string[]): string | undefined {
  if (!host) return undefined;
  // A bracketed IPv6 literal never names an app, and its colons are not a port separator.
  if (host.charCodeAt(0) === 91 /* [ */) return undefined;
  const colon = host.indexOf(":");
  let name = colon < 0 ? host : host.slice(0, colon);
  if (name.charCodeAt(name.length - 1) === 46 /* . */) name = name.slice(0, -1);
  name = name.toLowerCase();
  for (const domain of domains) {
    const dot = name.length - domain.length - 1;
    if (dot < 1 || name.charCodeAt(dot) !== 46 || !name.endsWith(domain)) continue;
    const app = name.slice(0, dot);
    if (!app.includes(".")) return app;
  }
  return undefined;
}
