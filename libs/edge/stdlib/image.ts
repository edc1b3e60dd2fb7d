/**
 * Image operations at the edge, in the old runtime's shape: `new Image(bytes).resize(200, 200)
 * .watermark(logo).webp().toResponse()`. Each call adds an operation; `toBuffer`/`toResponse` send the
 * image and its operations to the host, which does them with sharp (`fly.image.transform` of the
 * runtime; EdgeHost.image) and answers the new image.
 */

type Gravity =
  | "center"
  | "north"
  | "northeast"
  | "east"
  | "southeast"
  | "south"
  | "southwest"
  | "west"
  | "northwest";
type Fit = "cover" | "contain" | "fill" | "inside" | "outside";
type Format = "jpeg" | "png" | "webp" | "avif";

/** One operation, as the host takes it (libs/edge's EdgeImageOp). */
type ImageOp =
  | { op: "resize"; width?: number; height?: number; fit?: Fit; withoutEnlargement?: boolean }
  | { op: "overlay"; image: Uint8Array; gravity?: Gravity; top?: number; left?: number; tile?: boolean }
  | { op: "rotate"; angle: number }
  | { op: "flip" }
  | { op: "flop" }
  | { op: "grayscale" }
  | { op: "blur"; sigma: number }
  | { op: "format"; format: Format; quality?: number };

/** The new image: its bytes and what they are. */
export interface ImageResult {
  data: ArrayBuffer;
  info: { format: string; width: number; height: number; size: number };
}

export type ImageInput = ArrayBuffer | ArrayBufferView | Image;

interface RuntimeImage {
  transform(
    input: Uint8Array,
    ops: ImageOp[],
  ): Promise<{ body: Uint8Array; format: string; width: number; height: number }>;
}

function runtimeImage(): RuntimeImage {
  const fly = (globalThis as { fly?: { image?: RuntimeImage } }).fly;
  if (!fly?.image)
    throw new Error("image operations are not available: they are done by the edge runtime's host");
  return fly.image;
}

function bytesOf(input: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError("an image is an ArrayBuffer or a typed array of its bytes");
}

const CONTENT_TYPES: Record<string, string> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  gif: "image/gif",
};

export class Image {
  private readonly input: Uint8Array | Image;
  private readonly ops: ImageOp[] = [];

  constructor(input: ImageInput) {
    this.input = input instanceof Image ? input : bytesOf(input);
  }

  /**
   * Resizes to `width` x `height` (either may be left out: the other keeps the ratio). By default the
   * image covers the box and is cropped to it; `fit: "inside"` keeps it whole within the box.
   */
  resize(width?: number, height?: number, options: { fit?: Fit; withoutEnlargement?: boolean } = {}): this {
    this.ops.push({ op: "resize", width, height, ...options });
    return this;
  }

  /** Lays another image over this one, in a corner (default southeast) or at top/left: a watermark. */
  watermark(
    overlay: ArrayBuffer | ArrayBufferView,
    options: { gravity?: Gravity; top?: number; left?: number; tile?: boolean } = {},
  ): this {
    this.ops.push({ op: "overlay", image: bytesOf(overlay), ...options });
    return this;
  }

  /** The old runtime's name for watermark. */
  overlayWith(
    overlay: ArrayBuffer | ArrayBufferView,
    options: { gravity?: Gravity; top?: number; left?: number } = {},
  ): this {
    return this.watermark(overlay, options);
  }

  rotate(angle: number): this {
    this.ops.push({ op: "rotate", angle });
    return this;
  }

  /** Mirrors top to bottom. */
  flip(): this {
    this.ops.push({ op: "flip" });
    return this;
  }

  /** Mirrors left to right. */
  flop(): this {
    this.ops.push({ op: "flop" });
    return this;
  }

  grayscale(): this {
    this.ops.push({ op: "grayscale" });
    return this;
  }

  blur(sigma: number): this {
    this.ops.push({ op: "blur", sigma });
    return this;
  }

  jpeg(options: { quality?: number } = {}): this {
    return this.format("jpeg", options.quality);
  }

  png(): this {
    return this.format("png");
  }

  webp(options: { quality?: number } = {}): this {
    return this.format("webp", options.quality);
  }

  avif(options: { quality?: number } = {}): this {
    return this.format("avif", options.quality);
  }

  private format(format: Format, quality?: number): this {
    this.ops.push({ op: "format", format, ...(quality === undefined ? {} : { quality }) });
    return this;
  }

  /** The image with every operation done. */
  async toBuffer(): Promise<ImageResult> {
    const input =
      this.input instanceof Image ? new Uint8Array((await this.input.toBuffer()).data) : this.input;
    const out = await runtimeImage().transform(input, this.ops);
    const data = out.body.buffer.slice(
      out.body.byteOffset,
      out.body.byteOffset + out.body.byteLength,
    ) as ArrayBuffer;
    return {
      data,
      info: { format: out.format, width: out.width, height: out.height, size: data.byteLength },
    };
  }

  /** The image as a Response, its content type its format's. */
  async toResponse(init: ResponseInit = {}): Promise<Response> {
    const { data, info } = await this.toBuffer();
    const headers = new Headers(init.headers);
    headers.set("content-type", CONTENT_TYPES[info.format] ?? "application/octet-stream");
    return new Response(data, { ...init, headers });
  }
}

/** `new Image(input)`. */
export function image(input: ImageInput): Image {
  return new Image(input);
}

export default Image;
