import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { TUNNEL_PROTOCOL, upgradeForRelay } from "@hangar/config";
import type {
  AuditPage,
  CreatedOrg,
  CreatedToken,
  CreateTokenRequest,
  Org,
  OrgDetails,
  TokenInfo,
  Whoami,
} from "./auth-types.js";
import type { ApiConfig } from "./config.js";
import type { LogEntry } from "./logs.js";
import type {
  App,
  Build,
  BuildEvent,
  CreateMachineRequest,
  CreateReleaseRequest,
  CreateVolumeRequest,
  ExecRequest,
  ExecResponse,
  ExtendVolumeResponse,
  ListAppsResponse,
  Machine,
  MachineEvent,
  Release,
  Scaling,
  SecretsListing,
  StopRequest,
  StoredEdgeBundle,
  UpdateReleaseRequest,
  Volume,
  VolumeSnapshot,
  WaitState,
} from "./types.js";

/** The API answered with an HTTP error. `code` is the API's `status` string (e.g. "not_found"). */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    message: string,
    readonly httpStatus: number,
    readonly code: string | undefined,
    readonly method: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/** The API could not be reached at all (refused, unknown host, timed out). */
export class ConnectionError extends Error {
  override name = "ConnectionError";
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the Hangar API at ${url}: is \`npm start\` running? (${reason})`);
  }
}

type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  timeoutMs?: number;
}

interface SendOptions {
  query?: Query;
  headers?: Record<string, string>;
  /** Sent as it is: a string, or a stream of bytes. */
  body?: string | AsyncIterable<Uint8Array>;
  /** No timeout when undefined. */
  timeoutMs?: number;
  /** Ends the request (and a streamed response) when aborted. */
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Volume creates and snapshots copy disk images on a host: minutes for large ones. */
const VOLUME_TIMEOUT_MS = 600_000;
/** How long one call may wait in all for the org's rate limit before its 429 is the answer. */
const RATE_LIMIT_MAX_WAIT_MS = 120_000;

/** A 429's `Retry-After` (whole seconds) in ms, or undefined when absent or not a number of seconds. */
export function retryAfterOf(res: Pick<Response, "headers">): number | undefined {
  const value = res.headers.get("retry-after")?.trim();
  if (value === undefined || !/^\d{1,6}$/.test(value)) return undefined;
  // At least a little: a 0 would make the retry a busy loop.
  return Math.max(Number(value) * 1000, 100);
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function reasonOf(err: unknown): string {
  // undici wraps the socket error: "fetch failed" with the useful part in `cause`.
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  if ((err as Error).name === "TimeoutError") return "timed out";
  return cause?.message ?? (err as Error).message;
}

async function errorFrom(res: Response, method: string, path: string): Promise<ApiError> {
  const text = await res.text();
  let message = `HTTP ${res.status} ${res.statusText}`.trim();
  let code: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: unknown; status?: unknown };
    if (typeof body.error === "string" && body.error !== "") message = body.error;
    if (typeof body.status === "string") code = body.status;
  } catch {
    if (text.trim() !== "") message = `${message}: ${text.trim().slice(0, 200)}`;
  }
  return new ApiError(message, res.status, code, method, path);
}

/** A client for the Fly-compatible Machines API served by the Hangar gateway under /v1. */
export class ApiClient {
  private readonly base: string;
  /** The W3C `traceparent` every request carries while set (a traced command such as deploy sets it). */
  traceparent: (() => string) | undefined;

  constructor(private readonly config: ApiConfig) {
    this.base = config.apiUrl.replace(/\/+$/, "");
  }

  /** Sends one request; resolves to the parsed JSON body, or undefined for an empty one. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, {
      ...(options.query ? { query: options.query } : {}),
      ...(options.body !== undefined
        ? { body: JSON.stringify(options.body), headers: { "content-type": "application/json" } }
        : {}),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    const text = await res.text();
    return (text.trim() === "" ? undefined : JSON.parse(text)) as T;
  }

  /** Sends one request and returns the response once its headers are in; an HTTP error throws ApiError. */
  async send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const url = new URL(`${this.base}/v1${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value === undefined) continue;
      // A list repeats the parameter (build_arg=A=1&build_arg=B=2).
      for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(item));
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.config.token}`,
      accept: "application/json",
      ...(this.traceparent ? { traceparent: this.traceparent() } : {}),
      ...options.headers,
    };
    const streamed = options.body !== undefined && typeof options.body !== "string";
    let waited = 0;
    for (;;) {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers,
          ...(options.body !== undefined ? { body: options.body as RequestInit["body"] } : {}),
          // undici sends an async iterable body as it is read, which fetch only allows half-duplex.
          ...(streamed ? { duplex: "half" } : {}),
          ...signalOf(options),
        } as RequestInit);
      } catch (err) {
        if (options.signal?.aborted) throw err;
        throw new ConnectionError(this.base, reasonOf(err));
      }
      // Over the org's rate limit: the call was refused and charged nothing, so it is sent again once
      // Retry-After has passed, as flyctl does, up to RATE_LIMIT_MAX_WAIT_MS in all. A streamed body
      // has been consumed and cannot be sent again.
      const retryAfterMs = res.status === 429 && !streamed ? retryAfterOf(res) : undefined;
      if (retryAfterMs !== undefined && waited + retryAfterMs <= RATE_LIMIT_MAX_WAIT_MS) {
        await res.body?.cancel();
        await sleep(retryAfterMs, options.signal);
        waited += retryAfterMs;
        continue;
      }
      if (!res.ok) throw await errorFrom(res, method, path);
      return res;
    }
  }

  /**
   * Opens a tunnel into the machine, or any started machine of the app (`GET .../tunnel` or
   * `.../console` upgraded to hangar-tunnel): resolves to the connection once the gateway answers
   * 101; any other answer throws its ApiError, an unreachable gateway ConnectionError.
   */
  openTunnel(
    app: string,
    machineId: string | undefined,
    kind: "tunnel" | "console",
    query: Query,
  ): Promise<Socket> {
    const path = `${machineId ? machinePath(app, machineId) : `/apps/${enc(app)}`}/${kind}`;
    const url = new URL(`${this.base}/v1${path}`);
    for (const [key, value] of Object.entries(query))
      if (value !== undefined) url.searchParams.set(key, String(value));
    if (url.protocol === "http:" && kind === "tunnel") return this.openPortTunnel(url, path);
    return this.upgradeThroughHttpClient(url, path);
  }

  /**
   * A port tunnel over plain HTTP: the upgrade is made by hand on a socket whose reads go into one
   * reused buffer (upgradeForRelay), as the gateway's own relay does, since the HTTP client's
   * upgraded socket allocates a new buffer for every read, and a port tunnel may carry gigabytes.
   * Any answer but 101 is asked again through the HTTP client, which reads the error.
   */
  private async openPortTunnel(url: URL, path: string): Promise<Socket> {
    // A token no HTTP header may carry: the HTTP client refuses it with its own message.
    if (!/^[\x21-\x7e]+$/.test(this.config.token)) return this.upgradeThroughHttpClient(url, path);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const head =
      `GET ${url.pathname}${url.search} HTTP/1.1\r\n` +
      `Host: ${url.host}\r\n` +
      `Authorization: Bearer ${this.config.token}\r\n` +
      `Connection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\n\r\n`;
    const answer = await upgradeForRelay(
      { host, port: Number(url.port || 80), allowHalfOpen: true, noDelay: true },
      head,
      DEFAULT_TIMEOUT_MS,
    ).catch((err: unknown) => {
      throw new ConnectionError(this.base, reasonOf(err));
    });
    if ("socket" in answer) return answer.socket;
    return this.upgradeThroughHttpClient(url, path);
  }

  private upgradeThroughHttpClient(url: URL, path: string): Promise<Socket> {
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method: "GET",
        headers: {
          authorization: `Bearer ${this.config.token}`,
          connection: "Upgrade",
          upgrade: TUNNEL_PROTOCOL,
        },
      });
      // Only the answer is timed: a tunnel may then stay idle as long as its user likes.
      req.setTimeout(DEFAULT_TIMEOUT_MS, () => req.destroy(new Error("timed out")));
      req.once("upgrade", (_res, socket, head) => {
        socket.setTimeout(0);
        socket.setNoDelay(true);
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.once("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.once("end", () => {
          const body = new Response(Buffer.concat(chunks), {
            status: res.statusCode ?? 500,
            statusText: res.statusMessage ?? "",
          });
          void errorFrom(body, "GET", path).then(reject, reject);
        });
      });
      req.once("error", (err) => reject(new ConnectionError(this.base, reasonOf(err))));
      req.end();
    });
  }

  /** GET /apps?org_slug= */
  listApps(org?: string): Promise<ListAppsResponse> {
    // Without org_slug, the gateway lists the token's own org.
    return this.request("GET", "/apps", { query: { org_slug: org } });
  }

  /** GET /apps/{app} */
  getApp(app: string): Promise<App> {
    return this.request("GET", `/apps/${enc(app)}`);
  }

  /** POST /apps */
  createApp(app: string, org?: string): Promise<App> {
    // Without org_slug, the app goes to the token's own org.
    return this.request("POST", "/apps", { body: { app_name: app, ...(org ? { org_slug: org } : {}) } });
  }

  /** DELETE /apps/{app} */
  destroyApp(app: string): Promise<unknown> {
    return this.request("DELETE", `/apps/${enc(app)}`);
  }

  /** GET /apps/{app}/machines */
  listMachines(app: string, filter: { region?: string } = {}): Promise<Machine[]> {
    return this.request("GET", `/apps/${enc(app)}/machines`, { query: { region: filter.region } });
  }

  /** POST /apps/{app}/machines */
  createMachine(app: string, body: CreateMachineRequest): Promise<Machine> {
    return this.request("POST", `/apps/${enc(app)}/machines`, { body });
  }

  /** POST /apps/{app}/machines/{id}: a running machine is replaced by one with the new config. */
  updateMachine(app: string, id: string, body: CreateMachineRequest): Promise<Machine> {
    return this.request("POST", machinePath(app, id), { body });
  }

  /** GET /apps/{app}/machines/{id} */
  getMachine(app: string, id: string): Promise<Machine> {
    return this.request("GET", machinePath(app, id));
  }

  /** GET /apps/{app}/machines/{id}/events */
  machineEvents(app: string, id: string): Promise<MachineEvent[]> {
    return this.request("GET", `${machinePath(app, id)}/events`);
  }

  /** POST /apps/{app}/machines/{id}/exec: runs a command inside the machine; waits past its timeout for the answer. */
  execMachine(app: string, id: string, body: ExecRequest): Promise<ExecResponse> {
    return this.request("POST", `${machinePath(app, id)}/exec`, {
      body,
      timeoutMs: body.timeout * 1000 + DEFAULT_TIMEOUT_MS,
    });
  }

  /** POST /apps/{app}/machines/{id}/start */
  startMachine(app: string, id: string): Promise<unknown> {
    return this.request("POST", `${machinePath(app, id)}/start`);
  }

  /** POST /apps/{app}/machines/{id}/stop */
  stopMachine(app: string, id: string, body: StopRequest = {}): Promise<unknown> {
    return this.request("POST", `${machinePath(app, id)}/stop`, { body });
  }

  /** POST /apps/{app}/machines/{id}/restart?timeout= */
  restartMachine(app: string, id: string, timeout?: string): Promise<unknown> {
    return this.request("POST", `${machinePath(app, id)}/restart`, { query: { timeout } });
  }

  /** DELETE /apps/{app}/machines/{id}?force= */
  destroyMachine(app: string, id: string, force = false): Promise<unknown> {
    return this.request("DELETE", machinePath(app, id), { query: { force: force ? true : undefined } });
  }

  /** GET /apps/{app}/machines/{id}/wait: one long poll of at most `timeoutSeconds`. */
  waitMachine(
    app: string,
    id: string,
    state: WaitState,
    timeoutSeconds: number,
    instanceId?: string,
  ): Promise<unknown> {
    return this.request("GET", `${machinePath(app, id)}/wait`, {
      query: { state, timeout: timeoutSeconds, instance_id: instanceId },
      // The server holds the request for up to `timeout` seconds; give it room to answer.
      timeoutMs: (timeoutSeconds + 15) * 1000,
    });
  }

  /** POST /apps/{app}/builds: uploads a build context (a tar stream); `onSent` is told of each chunk sent. */
  async createBuild(app: string, options: CreateBuildOptions): Promise<Build> {
    const res = await this.send("POST", `/apps/${enc(app)}/builds`, {
      query: {
        dockerfile: options.dockerfile,
        target: options.target,
        no_cache: options.noCache ? true : undefined,
        build_arg: options.buildArgs && options.buildArgs.length > 0 ? options.buildArgs : undefined,
      },
      headers: {
        "content-type": "application/x-tar",
        // In a header, not the query: URLs end up in logs.
        ...(options.secrets
          ? { "hangar-build-secrets": Buffer.from(JSON.stringify(options.secrets)).toString("base64") }
          : {}),
      },
      body: options.context,
    });
    return (await res.json()) as Build;
  }

  /** GET /apps/{app}/builds: newest first. */
  listBuilds(app: string): Promise<Build[]> {
    return this.request("GET", `/apps/${enc(app)}/builds`);
  }

  /** POST /apps/{app}/builds/{id}/cancel: the build fails with reason "cancelled". */
  cancelBuild(app: string, id: string): Promise<Build> {
    return this.request("POST", `/apps/${enc(app)}/builds/${enc(id)}/cancel`);
  }

  /** GET /apps/{app}/builds/{id} */
  getBuild(app: string, id: string): Promise<Build> {
    return this.request("GET", `/apps/${enc(app)}/builds/${enc(id)}`);
  }

  /** GET /apps/{app}/builds/{id}/events?follow=true: the build's events as they happen, until the last one. */
  async *buildEvents(app: string, id: string): AsyncGenerator<BuildEvent> {
    const res = await this.send("GET", `/apps/${enc(app)}/builds/${enc(id)}/events`, {
      query: { follow: true },
      headers: { accept: "application/x-ndjson" },
    });
    if (!res.body) return;
    yield* parseNdjson<BuildEvent>(res.body);
  }

  /**
   * GET /apps/{app}/logs: the recent lines of the app's machines, oldest first, then (with `follow`)
   * new ones as they are printed, until `signal` aborts.
   */
  async *appLogs(
    app: string,
    options: { machine?: string; region?: string; follow: boolean; signal?: AbortSignal },
  ): AsyncGenerator<LogEntry> {
    const res = await this.send("GET", `/apps/${enc(app)}/logs`, {
      query: {
        instance: options.machine,
        region: options.region,
        no_tail: options.follow ? undefined : true,
      },
      headers: { accept: "application/x-ndjson" },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (!res.body) return;
    yield* parseNdjson<LogEntry>(res.body);
  }

  /** POST /apps/{app}/edge/bundles: stores an edge app's bundled code; the gateway checks `digest`. */
  async uploadEdgeBundle(app: string, code: string, digest: string): Promise<StoredEdgeBundle> {
    const res = await this.send("POST", `/apps/${enc(app)}/edge/bundles`, {
      query: { digest },
      headers: { "content-type": "application/javascript" },
      body: code,
    });
    return (await res.json()) as StoredEdgeBundle;
  }

  /** POST /apps/{app}/releases */
  createRelease(app: string, body: CreateReleaseRequest): Promise<Release> {
    return this.request("POST", `/apps/${enc(app)}/releases`, { body });
  }

  /** PATCH /apps/{app}/releases/{version} */
  updateRelease(app: string, version: number, body: UpdateReleaseRequest): Promise<Release> {
    return this.request("PATCH", `/apps/${enc(app)}/releases/${version}`, { body });
  }

  /** GET /apps/{app}/releases, newest first. */
  listReleases(app: string): Promise<Release[]> {
    return this.request("GET", `/apps/${enc(app)}/releases`);
  }

  /** GET /apps/{app}/releases/{version} */
  getRelease(app: string, version: number): Promise<Release> {
    return this.request("GET", `/apps/${enc(app)}/releases/${version}`);
  }

  /** GET /apps/{app}/scaling: the autoscaler's recent decisions, newest first. */
  getScaling(app: string, limit = 20): Promise<Scaling> {
    return this.request("GET", `/apps/${enc(app)}/scaling?limit=${limit}`);
  }

  /** POST /orgs: a new org, and its first admin token. */
  createOrg(slug: string, name?: string): Promise<CreatedOrg> {
    return this.request("POST", "/orgs", { body: { slug, ...(name ? { name } : {}) } });
  }

  /** GET /orgs: the orgs the token covers. */
  async listOrgs(): Promise<Org[]> {
    return (await this.request<{ orgs: Org[] }>("GET", "/orgs")).orgs;
  }

  /** GET /orgs/{slug} */
  getOrg(slug: string): Promise<OrgDetails> {
    return this.request("GET", `/orgs/${enc(slug)}`);
  }

  /** POST /tokens: a new token, shown this once. */
  createToken(body: CreateTokenRequest): Promise<CreatedToken> {
    return this.request("POST", "/tokens", { body });
  }

  /** GET /tokens?org= */
  async listTokens(org?: string): Promise<TokenInfo[]> {
    return (await this.request<{ tokens: TokenInfo[] }>("GET", "/tokens", { query: { org } })).tokens;
  }

  /** DELETE /tokens/{id} */
  async revokeToken(id: string): Promise<void> {
    await this.request("DELETE", `/tokens/${enc(id)}`);
  }

  /** GET /auth/whoami */
  whoami(): Promise<Whoami> {
    return this.request("GET", "/auth/whoami");
  }

  /** GET /audit: audited calls, newest first. */
  listAudit(query: { app?: string; org?: string; limit?: number; before?: number }): Promise<AuditPage> {
    return this.request("GET", "/audit", { query });
  }

  /** GET /apps/{app}/secrets: names, digests and times, never values. */
  listSecrets(app: string): Promise<SecretsListing> {
    return this.request("GET", `/apps/${enc(app)}/secrets`);
  }

  /** GET /orgs/{slug}/secrets: the org's secrets' names, digests and times, never values. */
  listOrgSecrets(org: string): Promise<SecretsListing> {
    return this.request("GET", `/orgs/${enc(org)}/secrets`);
  }

  /** POST /orgs/{slug}/secrets: sets (and, for null values, unsets) org secrets. */
  updateOrgSecrets(org: string, values: Record<string, string | null>): Promise<SecretsListing> {
    return this.request("POST", `/orgs/${enc(org)}/secrets`, { body: { values } });
  }

  /** POST /apps/{app}/secrets: sets (and, for null values, unsets); empty values and no stage deploy what is staged. */
  updateSecrets(app: string, values: Record<string, string | null>, stage = false): Promise<SecretsListing> {
    return this.request("POST", `/apps/${enc(app)}/secrets`, {
      body: { values, ...(stage ? { stage } : {}) },
    });
  }

  /** GET /apps/{app}/volumes: the app's volumes that are not destroyed. */
  listVolumes(app: string): Promise<Volume[]> {
    return this.request("GET", `/apps/${enc(app)}/volumes`);
  }

  /** POST /apps/{app}/volumes: answers once the volume is usable (its disk is made on its host). */
  createVolume(app: string, body: CreateVolumeRequest): Promise<Volume> {
    // Restoring or forking copies a whole disk, which takes longer than a plain create.
    return this.request("POST", `/apps/${enc(app)}/volumes`, { body, timeoutMs: VOLUME_TIMEOUT_MS });
  }

  /** GET /apps/{app}/volumes/{id} */
  getVolume(app: string, id: string): Promise<Volume> {
    return this.request("GET", volumePath(app, id));
  }

  /** PUT /apps/{app}/volumes/{id}/extend: grows the volume, mounted or not. */
  extendVolume(app: string, id: string, sizeGb: number): Promise<ExtendVolumeResponse> {
    return this.request("PUT", `${volumePath(app, id)}/extend`, { body: { size_gb: sizeGb } });
  }

  /** DELETE /apps/{app}/volumes/{id}: refused while a machine has it attached. */
  destroyVolume(app: string, id: string): Promise<Volume> {
    return this.request("DELETE", volumePath(app, id));
  }

  /** GET /apps/{app}/volumes/{id}/snapshots */
  listVolumeSnapshots(app: string, id: string): Promise<VolumeSnapshot[]> {
    return this.request("GET", `${volumePath(app, id)}/snapshots`);
  }

  /** POST /apps/{app}/volumes/{id}/snapshots: answers once the snapshot is stored. */
  createVolumeSnapshot(app: string, id: string): Promise<VolumeSnapshot> {
    return this.request("POST", `${volumePath(app, id)}/snapshots`, { timeoutMs: VOLUME_TIMEOUT_MS });
  }
}

/** What `createBuild` uploads and how the image is built. */
export interface CreateBuildOptions {
  /** The tar of the build context. */
  context: AsyncIterable<Uint8Array>;
  /** The Dockerfile's path inside the context. */
  dockerfile?: string;
  /** The stage to build (`--target`). */
  target?: string;
  noCache?: boolean;
  /** `KEY=VALUE` pairs. */
  buildArgs?: string[];
  /** Build secrets by id (`--build-secret`); the gateway seals them. */
  secrets?: Record<string, string>;
}

/** Parses newline-delimited JSON from a byte stream, one object per non-empty line. */
export async function* parseNdjson<T>(body: AsyncIterable<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line !== "") yield JSON.parse(line) as T;
      newline = pending.indexOf("\n");
    }
  }
  pending += decoder.decode();
  if (pending.trim() !== "") yield JSON.parse(pending) as T;
}

/** The fetch signal of a request: its timeout, the caller's signal, or both. */
function signalOf(options: SendOptions): { signal?: AbortSignal } {
  const signals = [
    ...(options.timeoutMs !== undefined ? [AbortSignal.timeout(options.timeoutMs)] : []),
    ...(options.signal ? [options.signal] : []),
  ];
  if (signals.length === 0) return {};
  return { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) };
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function machinePath(app: string, id: string): string {
  return `/apps/${enc(app)}/machines/${enc(id)}`;
}

function volumePath(app: string, id: string): string {
  return `/apps/${enc(app)}/volumes/${enc(id)}`;
}
