import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createPrivateKey, randomUUID, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBinary } from "./binaries.js";
import { ServerStartError } from "./errors.js";
import { cleanupOnExit } from "./exit-cleanup.js";
import { poll } from "./poll.js";
import { freePort } from "./ports.js";

/** How a test registry checks who pulls and pushes. */
export type RegistryAuthMode = "none" | "basic" | "token";

export interface TestRegistryOptions {
  /** "none" (anonymous), "basic" (htpasswd) or "token" (a token server of this kit, as Docker Hub does). */
  auth?: RegistryAuthMode;
  /** The one user of an authenticated registry (default `tester` / `secret-pass`). */
  username?: string;
  password?: string;
}

/** A running Debian docker-registry (distribution) on 127.0.0.1. */
export interface TestRegistry {
  /** `127.0.0.1:<port>`, as refs and skopeo name it. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  auth: RegistryAuthMode;
  username: string;
  password: string;
  /** Copies an image with skopeo (`oci:<layout>:<tag>` or any skopeo transport) to `<host>/<repository>:<tag>`. */
  push(source: string, target: string, opts?: { all?: boolean; format?: "oci" | "v2s2" }): Promise<void>;
  stop(): Promise<void>;
}

const TOKEN_SERVICE = "hangar-test-registry";
const TOKEN_ISSUER = "hangar-test-token-server";

/**
 * Starts Debian's docker-registry serving from a temp folder on a free port: anonymous, with htpasswd
 * Basic auth (htpasswd -Bbn), or with token auth, where a small token server started here issues
 * RS256 JWTs (signed with a self-signed certificate the registry's `auth.token.rootcertbundle` trusts)
 * to the one user, for the scope it asks.
 */
export async function startTestRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? "none";
  const username = opts.username ?? "tester";
  const password = opts.password ?? "secret-pass";
  const binary = findBinary("docker-registry");
  const dir = mkdtempSync(join(tmpdir(), "hangar-test-registry-"));
  const port = await freePort();
  let tokenServer: Server | undefined;
  let authBlock = "";
  if (auth === "basic") {
    const line = execFileSync(findBinary("htpasswd"), ["-Bbn", username, password]).toString();
    writeFileSync(join(dir, "htpasswd"), line);
    authBlock = `auth:\n  htpasswd:\n    realm: hangar-test\n    path: ${join(dir, "htpasswd")}\n`;
  } else if (auth === "token") {
    execFileSync(
      findBinary("openssl"),
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=hangar-test-token",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    tokenServer = await startTokenServer(dir, username, password);
    const realm = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
    authBlock =
      `auth:\n  token:\n    realm: ${realm}\n    service: ${TOKEN_SERVICE}\n    issuer: ${TOKEN_ISSUER}\n` +
      `    rootcertbundle: ${join(dir, "cert.pem")}\n`;
  }
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${authBlock}`,
  );
  const child: ChildProcess = spawn(binary, ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const stopTokens = () => tokenServer?.close();
  const forget = cleanupOnExit(() => {
    child.kill("SIGKILL");
    stopTokens();
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  // What the last probe got, for the error if the registry never answers.
  let last = "no answer yet";
  try {
    await poll(
      async () => {
        if (child.exitCode !== null)
          throw new ServerStartError("docker-registry", `exited at start: ${stderr}`);
        const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) }).catch((e: Error) => {
          last = `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ""}`;
          return undefined;
        });
        if (res) last = `HTTP ${res.status}`;
        return res && (res.status === 200 || res.status === 401) ? true : undefined;
      },
      { what: "docker-registry to answer", timeoutMs: 15_000, intervalMs: 50 },
    );
  } catch (error) {
    if (error instanceof Error && !(error instanceof ServerStartError))
      error.message += ` (pid ${child.pid}, the last probe of ${url}/v2/: ${last}; its stderr: ${stderr.trim() || "empty"})`;
    child.kill("SIGKILL");
    stopTokens();
    forget();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const host = `127.0.0.1:${port}`;
  return {
    host,
    url,
    auth,
    username,
    password,
    async push(source, target, pushOpts = {}) {
      const args = ["copy", "--quiet", "--dest-tls-verify=false"];
      if (auth !== "none") args.push("--dest-creds", `${username}:${password}`);
      if (pushOpts.all) args.push("--all");
      if (pushOpts.format) args.push("--format", pushOpts.format);
      args.push(source, `docker://${host}/${target}`);
      await new Promise<void>((resolve, reject) => {
        const p = spawn(findBinary("skopeo"), args, { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        p.stderr.on("data", (b: Buffer) => {
          err += b.toString();
        });
        p.once("error", reject);
        p.once("close", (code) =>
          code === 0
            ? resolve()
            : reject(new Error(`skopeo ${args.join(" ")} failed (exit ${code}): ${err.trim()}`)),
        );
      });
    },
    async stop() {
      forget();
      const exited = new Promise<void>((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.once("exit", () => resolve());
      });
      child.kill("SIGTERM");
      await exited;
      await new Promise<void>((resolve) => (tokenServer ? tokenServer.close(() => resolve()) : resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The token server of Docker's token auth spec: GET /token?service=..&scope=repository:<name>:<actions>
 * with the user's Basic credentials answers {token, expires_in}; anything else is 401.
 */
async function startTokenServer(dir: string, username: string, password: string): Promise<Server> {
  const key = createPrivateKey(readFileSync(join(dir, "key.pem")));
  const certDer = readFileSync(join(dir, "cert.pem"))
    .toString()
    .replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, "");
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://token");
    if (u.pathname !== "/token" || req.headers.authorization !== expected) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "wrong user name or password" }] }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = u.searchParams.getAll("scope").flatMap((scope) => {
      const [type, ...rest] = scope.split(":");
      const actions = rest.pop() ?? "";
      return [
        {
          type,
          name: rest.join(":"),
          actions: actions.split(",").filter((a) => a === "pull" || a === "push"),
        },
      ];
    });
    const header = { alg: "RS256", typ: "JWT", x5c: [certDer] };
    const claims = {
      iss: TOKEN_ISSUER,
      sub: username,
      aud: u.searchParams.get("service") ?? TOKEN_SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signing = `${b64(header)}.${b64(claims)}`;
    const signature = sign("sha256", Buffer.from(signing), key).toString("base64url");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        token: `${signing}.${signature}`,
        expires_in: 300,
        issued_at: new Date().toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/** An HTTP proxy in front of a registry that counts blob GETs and injects faults on demand. */
export interface FaultyRegistryProxy {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** `127.0.0.1:<port>`, as refs name it. */
  host: string;
  /** The paths of the blob GETs it passed on. */
  blobGets: string[];
  /** Statuses (429, 503, ...) to answer the next requests with, one each, before passing any on. */
  failNext: number[];
  /** While true, the last byte of every blob body is flipped. */
  corrupt: boolean;
  stop(): Promise<void>;
}

/** Starts a FaultyRegistryProxy in front of `target` (a registry's base URL). */
export async function startFaultyRegistryProxy(target: string): Promise<FaultyRegistryProxy> {
  const state = { blobGets: [] as string[], failNext: [] as number[], corrupt: false };
  const server = createServer(async (req, res) => {
    const status = state.failNext.shift();
    if (status !== undefined) {
      res.writeHead(status, status === 429 ? { "retry-after": "0" } : {});
      res.end();
      return;
    }
    const isBlob = /\/blobs\/sha256:/.test(req.url ?? "");
    if (isBlob && req.method === "GET") state.blobGets.push(req.url ?? "");
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === "string" && k !== "host") headers[k] = v;
    try {
      const upstream = await fetch(`${target}${req.url}`, {
        method: req.method,
        headers,
        redirect: "manual",
      });
      const out: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "transfer-encoding" && k !== "content-encoding") out[k] = v;
      });
      const body = Buffer.from(await upstream.arrayBuffer());
      const last = body.length - 1;
      if (isBlob && state.corrupt && last >= 0) body[last] = (body[last] ?? 0) ^ 0xff;
      res.writeHead(upstream.status, out);
      res.end(body);
    } catch {
      res.writeHead(502);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    url: `http://${host}`,
    host,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
