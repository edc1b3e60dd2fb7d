/** A parsed `WWW-Authenticate` challenge: its scheme (lowercase) and its parameters. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses the first challenge of a `WWW-Authenticate` header, as registries send it:
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull"`
 * or `Basic realm="Registry Realm"`. Parameter names are lowercased; quoted values may hold commas.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge | undefined {
  const match = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const scheme = (match[1] as string).toLowerCase();
  const params: Record<string, string> = {};
  const param = /\s*([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/gy;
  const rest = match[2] ?? "";
  let m: RegExpExecArray | null = param.exec(rest);
  while (m !== null && m[0] !== "") {
    const name = (m[1] as string).toLowerCase();
    params[name] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
    if (param.lastIndex >= rest.length) break;
    m = param.exec(rest);
  }
  return { scheme, params };
}

/** The `Authorization` value of HTTP Basic auth. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
