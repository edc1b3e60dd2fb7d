/**
 * crypto: getRandomValues and randomUUID from the host's random source, and crypto.subtle run by the
 * host's WebCrypto. A key stays in the host; the isolate holds a CryptoKey that names it by a number,
 * released when the CryptoKey is collected.
 */
import { EdgeDOMException } from "./dom-exception.js";
import { callHost, callHostSync, tellHost } from "./host.js";
import { SUBTLE_OPERATIONS } from "./subtle-operations.js";

/** A key as the host describes it (its handle, and what WebCrypto says of it). */
export interface KeyDescription {
  handle: number;
  type: string;
  extractable: boolean;
  algorithm: unknown;
  usages: string[];
}

const released = new FinalizationRegistry<number>((handle) => tellHost("releaseKey", handle));
let handleOf: (key: EdgeCryptoKey) => number;

export class EdgeCryptoKey {
  readonly #handle: number;
  readonly type: string;
  readonly extractable: boolean;
  readonly algorithm: unknown;
  readonly usages: string[];

  static {
    handleOf = (key) => key.#handle;
  }

  constructor(description: KeyDescription) {
    this.#handle = description.handle;
    this.type = description.type;
    this.extractable = description.extractable;
    this.algorithm = description.algorithm;
    this.usages = description.usages;
    released.register(this, description.handle);
  }

  get [Symbol.toStringTag](): string {
    return "CryptoKey";
  }
}

const MAX_RANDOM_BYTES = 65536;

export function getRandomValues<T extends ArrayBufferView>(array: T): T {
  if (
    !(
      array instanceof Int8Array ||
      array instanceof Uint8Array ||
      array instanceof Uint8ClampedArray ||
      array instanceof Int16Array ||
      array instanceof Uint16Array ||
      array instanceof Int32Array ||
      array instanceof Uint32Array ||
      array instanceof BigInt64Array ||
      array instanceof BigUint64Array
    )
  )
    throw new EdgeDOMException("getRandomValues needs an integer typed array", "TypeMismatchError");
  if (array.byteLength > MAX_RANDOM_BYTES)
    throw new EdgeDOMException(
      `getRandomValues gives at most ${MAX_RANDOM_BYTES} bytes`,
      "QuotaExceededError",
    );
  const bytes = callHostSync("random", array.byteLength) as Uint8Array;
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
  return array;
}

export function randomUUID(): string {
  const b = getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An argument as it crosses: keys become their handles, buffers Uint8Arrays, objects walked. */
function toHost(value: unknown): unknown {
  if (value instanceof EdgeCryptoKey) return { $key: handleOf(value) };
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value))
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (Array.isArray(value)) return value.map(toHost);
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toHost(v)]));
  return value;
}

/** A result as it comes back: key descriptions become CryptoKeys, bytes ArrayBuffers. */
function fromHost(value: unknown): unknown {
  if (value instanceof Uint8Array)
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>;
    if (typeof record.$handle === "number")
      return new EdgeCryptoKey({ ...(record as unknown as KeyDescription), handle: record.$handle });
    if ("publicKey" in record && "privateKey" in record)
      return { publicKey: fromHost(record.publicKey), privateKey: fromHost(record.privateKey) };
  }
  return value;
}

function subtleCall(op: string) {
  return async (...args: unknown[]): Promise<unknown> => {
    try {
      return fromHost(await callHost("subtle", op, args.map(toHost)));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const [name, ...rest] = message.split(": ");
      throw rest.length > 0 && name !== undefined && /^[A-Za-z]+Error$/.test(name)
        ? new EdgeDOMException(rest.join(": "), name)
        : new EdgeDOMException(message, "OperationError");
    }
  };
}

export const subtle = Object.fromEntries(SUBTLE_OPERATIONS.map((op) => [op, subtleCall(op)]));

export const edgeCrypto = { getRandomValues, randomUUID, subtle };
