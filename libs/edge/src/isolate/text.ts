/** TextEncoder and TextDecoder (UTF-8) from fast-text-encoding. */
import * as encoding from "fast-text-encoding";

interface TextEncoding {
  TextEncoder: typeof globalThis.TextEncoder;
  TextDecoder: typeof globalThis.TextDecoder;
}

const loaded = encoding as unknown as Partial<TextEncoding>;
const fromGlobal = globalThis as unknown as Partial<TextEncoding>;

export const TextEncoder = (loaded.TextEncoder ?? fromGlobal.TextEncoder) as typeof globalThis.TextEncoder;
export const TextDecoder = (loaded.TextDecoder ?? fromGlobal.TextDecoder) as typeof globalThis.TextDecoder;
