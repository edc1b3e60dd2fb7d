import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** Where the gateway listens unless local.json or HANGAR_API_URL says otherwise. */
export const DEFAULT_API_URL = "http://127.0.0.1:4280";
/** Where the proxy listens unless local.json or HANGAR_PROXY_URL says otherwise. */
export const DEFAULT_PROXY_URL = "http://localhost:8080";

export const NO_PLATFORM_MESSAGE =
  "no Hangar platform found: run `npm start` in the hangar repository, or set HANGAR_API_URL and HANGAR_API_TOKEN";

export const NO_TOKEN_MESSAGE =
  "no API token: set HANGAR_API_TOKEN (or FLY_API_TOKEN), or use the token `npm start` writes to $HANGAR_HOME/local.json";

/** What the CLI knows about the platform, from the environment and $HANGAR_HOME/local.json. */
export interface HangarConfig {
  /** The local.json that was read, if one exists. */
  file?: string;
  apiUrl?: string;
  token?: string;
  proxyUrl: string;
}

/** What one command needs to call the API. */
export interface ApiConfig {
  apiUrl: string;
  token: string;
}

/** The platform cannot be found or its configuration cannot be read. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

interface LocalJson {
  api_url?: unknown;
  proxy_url?: unknown;
  token?: unknown;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** A token as given: flyctl's `FlyV1 <token>` form (what `fly tokens create` prints) loses its prefix. */
export function apiToken(value: unknown): string | undefined {
  const text = str(value);
  return text === undefined ? undefined : str(text.replace(/^\s*FlyV1\s+/i, "").trim());
}

async function readLocalJson(file: string): Promise<LocalJson | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== "object") throw new Error("not a JSON object");
    return parsed as LocalJson;
  } catch (err) {
    throw new ConfigError(`cannot parse ${file}: ${(err as Error).message}`);
  }
}

/** Reads the configuration: HANGAR_* (then FLY_API_TOKEN) environment variables win over $HANGAR_HOME/local.json. */
export async function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<HangarConfig> {
  const home = str(env.HANGAR_HOME) ?? join(homedir(), ".hangar");
  const file = join(home, "local.json");
  const local = await readLocalJson(file);
  // A local.json means `npm start` ran, so the gateway is at its default address unless it says otherwise.
  const apiUrl = str(env.HANGAR_API_URL) ?? str(local?.api_url) ?? (local ? DEFAULT_API_URL : undefined);
  return {
    ...(local ? { file } : {}),
    apiUrl,
    // FLY_API_TOKEN, so scripts written for flyctl run unchanged; HANGAR_API_TOKEN wins when both are set.
    token: apiToken(env.HANGAR_API_TOKEN) ?? apiToken(env.FLY_API_TOKEN) ?? apiToken(local?.token),
    proxyUrl: str(env.HANGAR_PROXY_URL) ?? str(local?.proxy_url) ?? DEFAULT_PROXY_URL,
  };
}

/** The API address and token, or a ConfigError telling how to get them. */
export function requireApi(config: HangarConfig): ApiConfig {
  if (!config.apiUrl) throw new ConfigError(NO_PLATFORM_MESSAGE);
  if (!config.token) throw new ConfigError(NO_TOKEN_MESSAGE);
  return { apiUrl: config.apiUrl, token: config.token };
}

/** The public URL of an app behind the proxy: `<app>.` in front of the proxy's host name. */
export function appUrl(app: string, proxyUrl: string): string {
  const url = new URL(proxyUrl);
  // A loopback address cannot take a subdomain, and *.localhost resolves to loopback on its own.
  const local = /^(127\.\d+\.\d+\.\d+|0\.0\.0\.0|\[::1?\]|localhost)$/.test(url.hostname);
  url.hostname = `${app}.${local ? "localhost" : url.hostname}`;
  return url.origin;
}
