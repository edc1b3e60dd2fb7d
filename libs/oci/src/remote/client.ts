import { setTimeout as sleep } from "node:timers/promises";
import { type Digest, digestOf, isDigest } from "../digest.js";
import { ImageNotFoundError, RegistryAuthError, RemoteRegistryError } from "../errors.js";
import { MANIFEST_TYPES } from "../media.js";
import { basicAuthorization, parseWwwAuthenticate } from "./auth.js";
import { DEFAULT_RETRY, isRetryableStatus, type RetryPolicy, retryDelayMs } from "./backoff.js";
import type { RegistryCredentials } from "./credentials.js";

/** A manifest as a remote registry sent it, its digest checked. */
export interface RemoteManifest {
  digest: Digest;
  mediaType: string;
  bytes: Uint8Array;
}

/** How to reach one remote registry. */
export interface RemoteRegistryOptions {
  /** The registry's host as refs name it (`docker.io`, `localhost:5000`): errors and credentials use it. */
  host: string;
  /** Its API's base URL (`https://registry-1.docker.io`, `http://127.0.0.1:5000`). */
  url: string;
  credentials?: RegistryCredentials;
  retry?: RetryPolicy;
}

// Every manifest media type Hangar reads, preferred first: a registry that holds several
// representations answers with one of these.
const ACCEPT = MANIFEST_TYPES.join(", ");

/**
 * A client of the OCI Distribution API of one remote registry: manifests by tag or digest and
 * blobs by digest, anonymously, with Basic auth, or with the Bearer token flow registries such as
 * Docker Hub ask for in their `WWW-Authenticate` challenge (tokens cached per scope). 429 and 5xx
 * answers and network failures are retried with exponential backoff (honouring Retry-After); other
 * 4xx answers are not.
 */
export class RemoteRegistry {
  readonly #opts: RemoteRegistryOptions;
  readonly #tokens = new Map<string, { token: string; expiresAt: number }>();
  #basic = false;

  constructor(opts: RemoteRegistryOptions) {
    this.#opts = { ...opts, url: opts.url.replace(/\/+$/, "") };
  }

  /** A manifest of `repository` by tag or digest; `ref` names the image in errors. Verifies a digest reference. */
  async manifest(repository: string, reference: string, ref: string): Promise<RemoteManifest> {
    const res = await this.#get(`/v2/${repository}/manifests/${reference}`, repository, ref, ACCEPT);
    if (res.status === 404) {
      await res.body?.cancel();
      const where = `${this.#opts.host}/${repository}`;
      throw new ImageNotFoundError(
        ref,
        isDigest(reference)
          ? `${ref} not found: manifest ${reference} does not exist in ${where}`
          : `${ref} not found: tag ${reference} does not exist in ${where}`,
      );
    }
    await this.#check(res, ref, `manifest ${reference}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const digest = digestOf(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new RemoteRegistryError(
        ref,
        `manifest of ${ref} hashes to ${digest}, not ${reference}: the registry sent other content`,
      );
    }
    const sent = (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    const mediaType = MANIFEST_TYPES.includes(sent) ? sent : (mediaTypeOf(bytes) ?? sent);
    if (!MANIFEST_TYPES.includes(mediaType)) {
      throw new RemoteRegistryError(
        ref,
        `${ref} is of media type "${mediaType}", which Hangar does not run (it reads ${MANIFEST_TYPES.join(", ")})`,
      );
    }
    return { digest, mediaType, bytes };
  }

  /** The body of blob `digest` of `repository`, unverified: the caller hashes what it reads. */
  async blob(repository: string, digest: Digest, ref: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#get(`/v2/${repository}/blobs/${digest}`, repository, ref);
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RemoteRegistryError(
        ref,
        `blob ${digest} of ${ref} is not in ${this.#opts.host}/${repository}`,
      );
    }
    await this.#check(res, ref, `blob ${digest}`);
    if (res.body === null) throw new RemoteRegistryError(ref, `blob ${digest} of ${ref} came with no body`);
    return res.body;
  }

  async #check(res: Response, ref: string, what: string): Promise<void> {
    if (res.ok) return;
    const body = (await res.text().catch(() => "")).slice(0, 300).trim();
    if (res.status === 401 || res.status === 403)
      throw new RegistryAuthError(ref, this.#opts.host, body || undefined);
    throw new RemoteRegistryError(
      ref,
      `${this.#opts.host} answered ${res.status} for ${what} of ${ref}${body ? `: ${body}` : ""}`,
    );
  }

  /** A GET with auth: on a 401 it answers the challenge once (token or Basic) and asks again. */
  async #get(path: string, repository: string, ref: string, accept?: string): Promise<Response> {
    const scope = `repository:${repository}:pull`;
    const headers = (): Record<string, string> => {
      const h: Record<string, string> = accept ? { accept } : {};
      const auth = this.#authorization(scope);
      if (auth) h.authorization = auth;
      return h;
    };
    const res = await this.#fetch(`${this.#opts.url}${path}`, headers(), ref);
    if (res.status !== 401) return res;
    await res.body?.cancel();
    const challenge = parseWwwAuthenticate(res.headers.get("www-authenticate") ?? "");
    if (challenge?.scheme === "bearer" && challenge.params.realm) {
      await this.#fetchToken(challenge.params, scope, ref);
    } else if (challenge?.scheme === "basic" && this.#opts.credentials && !this.#basic) {
      this.#basic = true;
    } else {
      throw new RegistryAuthError(
        ref,
        this.#opts.host,
        this.#opts.credentials ? undefined : "no credentials",
      );
    }
    const again = await this.#fetch(`${this.#opts.url}${path}`, headers(), ref);
    if (again.status === 401) {
      await again.body?.cancel();
      throw new RegistryAuthError(ref, this.#opts.host);
    }
    return again;
  }

  #authorization(scope: string): string | undefined {
    const token = this.#tokens.get(scope);
    if (token && token.expiresAt > Date.now()) return `Bearer ${token.token}`;
    const creds = this.#opts.credentials;
    if (this.#basic && creds) return basicAuthorization(creds.username, creds.password);
    return undefined;
  }

  /** Gets a Bearer token for `scope` from the challenge's realm, with the credentials if any. */
  async #fetchToken(params: Record<string, string>, scope: string, ref: string): Promise<void> {
    const url = new URL(params.realm as string);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? scope);
    const creds = this.#opts.credentials;
    const headers: Record<string, string> = creds
      ? { authorization: basicAuthorization(creds.username, creds.password) }
      : {};
    const res = await this.#fetch(url.toString(), headers, ref);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new RegistryAuthError(ref, this.#opts.host, "the token server refused the credentials");
    }
    await this.#check(res, ref, "a token");
    const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new RemoteRegistryError(ref, `the token server of ${this.#opts.host} answered without a token`);
    // Docker's token spec: 60 s when expires_in is absent; renewed a little early.
    const seconds = body.expires_in ?? 60;
    this.#tokens.set(scope, { token, expiresAt: Date.now() + Math.max(seconds - 5, 1) * 1000 });
  }

  /** One request, retried on 429, 5xx and network failures with backoff. */
  async #fetch(url: string, headers: Record<string, string>, ref: string): Promise<Response> {
    const policy = this.#opts.retry ?? DEFAULT_RETRY;
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= policy.attempts;
      let res: Response;
      try {
        res = await fetch(url, { headers, redirect: "follow" });
      } catch (error) {
        if (last) {
          throw new RemoteRegistryError(
            ref,
            `cannot reach ${this.#opts.host} for ${ref}: ${(error as Error).cause ?? (error as Error).message}`,
            { cause: error },
          );
        }
        await sleep(retryDelayMs(attempt, policy));
        continue;
      }
      if (!isRetryableStatus(res.status) || last) return res;
      await res.body?.cancel();
      await sleep(retryDelayMs(attempt, policy, res.headers.get("retry-after")));
    }
  }
}

/** The mediaType a manifest names itself, when the registry's Content-Type says nothing useful. */
function mediaTypeOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString()) as { mediaType?: unknown };
    return typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  } catch {
    return undefined;
  }
}
