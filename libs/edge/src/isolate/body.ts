/**
 * What Request and Response share: a body held as bytes until someone asks for it as a stream, or a
 * stream given by the app (read whole when the body crosses to the host).
 */
import { ReadableStream } from "web-streams-polyfill";
import { EDGE_BODY_MAX_BYTES } from "../contract.js";
import { TextDecoder, TextEncoder } from "./text.js";
import { URLSearchParams } from "./url.js";

export type BodySource = Uint8Array | ReadableStream<Uint8Array> | null;

/** A body init as the Fetch standard takes it (Blob and FormData are not in the edge runtime). */
export type BodyInitLike =
  | string
  | ArrayBuffer
  | ArrayBufferView
  | URLSearchParams
  | ReadableStream<Uint8Array>
  | null
  | undefined;

/** The body's source and the content type it implies. */
export function extractBody(init: BodyInitLike): { source: BodySource; contentType?: string } {
  if (init === null || init === undefined) return { source: null };
  if (typeof init === "string")
    return { source: new TextEncoder().encode(init), contentType: "text/plain;charset=UTF-8" };
  if (init instanceof URLSearchParams)
    return {
      source: new TextEncoder().encode(init.toString()),
      contentType: "application/x-www-form-urlencoded;charset=UTF-8",
    };
  if (init instanceof ArrayBuffer) return { source: new Uint8Array(init.slice(0)) };
  if (ArrayBuffer.isView(init))
    return { source: new Uint8Array(init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength)) };
  if (init instanceof ReadableStream) return { source: init };
  return { source: new TextEncoder().encode(String(init)), contentType: "text/plain;charset=UTF-8" };
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Reads a stream whole, at most EDGE_BODY_MAX_BYTES. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!(value instanceof Uint8Array)) throw new TypeError("a body stream must give Uint8Array chunks");
    total += value.byteLength;
    if (total > EDGE_BODY_MAX_BYTES) {
      await reader.cancel();
      throw new RangeError(`a body is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

let sourceOf: (body: EdgeBody) => BodySource;

export class EdgeBody {
  #source: BodySource;
  #used = false;

  static {
    sourceOf = (body) => body.#source;
  }

  constructor(source: BodySource) {
    this.#source = source;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#source === null) return null;
    if (this.#source instanceof Uint8Array) this.#source = streamOf(this.#source);
    return this.#source;
  }

  get bodyUsed(): boolean {
    return this.#used || (this.#source instanceof ReadableStream && this.#source.locked);
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.#consume();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return (await this.#consume()).slice();
  }

  async text(): Promise<string> {
    return new TextDecoder().decode(await this.#consume());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async #consume(): Promise<Uint8Array> {
    if (this.bodyUsed) throw new TypeError("the body has already been read");
    this.#used = true;
    const source = this.#source;
    if (source === null) return new Uint8Array(0);
    if (source instanceof Uint8Array) return source;
    return readAll(source);
  }

  /** For clone(): the source a copy gets (a stream is teed, this body keeps one branch). */
  protected cloneSource(): BodySource {
    if (this.bodyUsed) throw new TypeError("a body already read cannot be cloned");
    const source = this.#source;
    if (!(source instanceof ReadableStream)) return source;
    const [mine, theirs] = source.tee();
    this.#source = mine;
    return theirs;
  }

  /** For new Request(request): takes the other's source and marks it used. */
  protected takeSource(): BodySource {
    if (this.bodyUsed) throw new TypeError("the body has already been read");
    this.#used = true;
    return this.#source;
  }
}

/**
 * The whole body as bytes (marks it used), for the host; an empty body is undefined. At most
 * EDGE_BODY_MAX_BYTES cross (a stream is cut as it is read, bytes or a string given whole here).
 */
export async function bodyBytes(body: EdgeBody): Promise<Uint8Array | undefined> {
  const source = sourceOf(body);
  if (source === null) return undefined;
  const bytes = new Uint8Array(await body.arrayBuffer());
  if (bytes.byteLength > EDGE_BODY_MAX_BYTES)
    throw new RangeError(`a body is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
  return bytes;
}
