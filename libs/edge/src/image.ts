/**
 * Image operations of edge apps (`@fly/image`), done in the host with sharp: the proxy's EdgeHost and
 * `hangar edge dev`/`test`'s both call transformImage. Inputs are bounded (bytes and pixels) so that a
 * small compressed image cannot make the host decode a huge one, and so are outputs (no resize or
 * rotation past EDGE_IMAGE_MAX_PIXELS), blur's sigma and each pipeline's time (sharp's timeout).
 * sharp runs on libuv's thread pool, outside the app's CPU limit, which counts only the isolate's own
 * time: the bridge lets few image and crypto operations run at once (bridge.ts).
 */
import sharp, { type FormatEnum, type OverlayOptions, type Sharp } from "sharp";
import { EDGE_BODY_MAX_BYTES, type EdgeImageOp, type EdgeImageResult } from "./contract.js";

/** The most pixels an input (or an overlay) may decode to: 40 megapixels. */
export const EDGE_IMAGE_MAX_PIXELS = 40_000_000;
/** The largest width or height an app may ask for. */
export const EDGE_IMAGE_MAX_SIDE = 8_192;
/** The most operations one image may take. */
export const EDGE_IMAGE_MAX_OPS = 32;
/** The largest blur sigma (its cost grows with it). */
export const EDGE_IMAGE_MAX_SIGMA = 20;
/** The time sharp may take for one pipeline (one step between resizes or overlays, or the output). */
export const EDGE_IMAGE_TIMEOUT_S = 5;

/** An image operation the app got wrong: the app's error, not the host's. */
export class EdgeImageError extends Error {
  override name = "EdgeImageError";
}

function side(value: number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1 || value > EDGE_IMAGE_MAX_SIDE) {
    throw new EdgeImageError(
      `${what} ${value} is not a whole number of pixels from 1 to ${EDGE_IMAGE_MAX_SIDE}`,
    );
  }
  return value;
}

function checkBytes(bytes: Uint8Array, what: string): Buffer {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0)
    throw new EdgeImageError(`${what} has no bytes`);
  if (bytes.byteLength > EDGE_BODY_MAX_BYTES) {
    throw new EdgeImageError(`${what} is larger than ${EDGE_BODY_MAX_BYTES} bytes`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const open = (bytes: Buffer): Sharp =>
  sharp(bytes, { limitInputPixels: EDGE_IMAGE_MAX_PIXELS, failOn: "error" }).timeout({
    seconds: EDGE_IMAGE_TIMEOUT_S,
  });

interface Size {
  width: number;
  height: number;
}

/** Refuses a step whose output would be larger than EDGE_IMAGE_MAX_PIXELS; else its size. */
function bounded(size: Size, what: string): Size {
  const width = Math.ceil(size.width);
  const height = Math.ceil(size.height);
  if (width * height > EDGE_IMAGE_MAX_PIXELS) {
    throw new EdgeImageError(
      `${what} would make an image of ${width}x${height}, more than ${EDGE_IMAGE_MAX_PIXELS} pixels`,
    );
  }
  return { width, height };
}

/** The size a resize makes (sharp's fit rules), from the size before it. */
function resized(
  from: Size,
  width: number | undefined,
  height: number | undefined,
  op: EdgeImageOp & { op: "resize" },
): Size {
  const sx = width === undefined ? undefined : width / from.width;
  const sy = height === undefined ? undefined : height / from.height;
  const fit = op.fit ?? "cover";
  let size: Size;
  if (sx !== undefined && sy !== undefined && (fit === "cover" || fit === "fill" || fit === "contain"))
    size = { width: width as number, height: height as number };
  else {
    const scales = [sx, sy].filter((s): s is number => s !== undefined);
    const scale = fit === "inside" ? Math.min(...scales) : Math.max(...scales);
    size = { width: from.width * scale, height: from.height * scale };
  }
  if (op.withoutEnlargement && size.width * size.height > from.width * from.height) return from;
  return size;
}

/** The bounding box of an image rotated by `angle` degrees. */
function rotated(from: Size, angle: number): Size {
  const r = (angle * Math.PI) / 180;
  const cos = Math.abs(Math.cos(r));
  const sin = Math.abs(Math.sin(r));
  // Right angles exactly (cos/sin of multiples of 90° are not exactly 0 in floating point).
  if (angle % 90 === 0) return (angle / 90) % 2 === 0 ? from : { width: from.height, height: from.width };
  return { width: from.width * cos + from.height * sin, height: from.width * sin + from.height * cos };
}

/**
 * Applies each operation in order. sharp runs one pipeline's resize once, so an image is made again
 * from the previous result at each step after the first resize or overlay: every step sees the image
 * the steps before it made, as an app writing `.resize().overlay().resize()` expects.
 */
export async function transformImage(input: Uint8Array, ops: EdgeImageOp[]): Promise<EdgeImageResult> {
  if (!Array.isArray(ops) || ops.length > EDGE_IMAGE_MAX_OPS) {
    throw new EdgeImageError(`an image takes at most ${EDGE_IMAGE_MAX_OPS} operations`);
  }
  let bytes = checkBytes(input, "the image");
  let image = open(bytes);
  const meta = await image.metadata();
  const format = meta.format;
  if (!format) throw new EdgeImageError("the image's format is not one sharp reads");
  let size: Size = { width: meta.width ?? 1, height: meta.height ?? 1 };
  let output: { format: "jpeg" | "png" | "webp" | "avif"; quality?: number } | undefined;
  let pending = false;
  const settle = async () => {
    if (!pending) return;
    bytes = await image.toBuffer();
    image = open(bytes);
    pending = false;
  };
  for (const op of ops) {
    switch (op.op) {
      case "resize": {
        await settle();
        const width = side(op.width, "width");
        const height = side(op.height, "height");
        if (width === undefined && height === undefined)
          throw new EdgeImageError("resize needs a width or a height");
        size = bounded(resized(size, width, height, op), "resize");
        image = image.resize({
          ...(width ? { width } : {}),
          ...(height ? { height } : {}),
          fit: op.fit ?? "cover",
          withoutEnlargement: op.withoutEnlargement ?? false,
        });
        pending = true;
        break;
      }
      case "overlay": {
        await settle();
        const overlay = checkBytes(op.image, "the overlay");
        const over: OverlayOptions = { input: overlay, limitInputPixels: EDGE_IMAGE_MAX_PIXELS };
        if (op.top !== undefined || op.left !== undefined) {
          over.top = op.top ?? 0;
          over.left = op.left ?? 0;
        } else over.gravity = op.gravity ?? "southeast";
        if (op.tile) over.tile = true;
        image = image.composite([over]);
        pending = true;
        break;
      }
      case "rotate":
        if (!Number.isFinite(op.angle)) throw new EdgeImageError(`rotate: ${op.angle} is not an angle`);
        size = bounded(rotated(size, op.angle), "rotate");
        image = image.rotate(op.angle);
        pending = true;
        break;
      case "flip":
        image = image.flip();
        break;
      case "flop":
        image = image.flop();
        break;
      case "grayscale":
        image = image.grayscale();
        break;
      case "blur":
        if (!(op.sigma >= 0.3 && op.sigma <= EDGE_IMAGE_MAX_SIGMA))
          throw new EdgeImageError(`blur: sigma ${op.sigma} is not from 0.3 to ${EDGE_IMAGE_MAX_SIGMA}`);
        image = image.blur(op.sigma);
        break;
      case "format":
        if (!["jpeg", "png", "webp", "avif"].includes(op.format)) {
          throw new EdgeImageError(`format: ${String(op.format)} is not jpeg, png, webp or avif`);
        }
        output = { format: op.format, ...(op.quality === undefined ? {} : { quality: op.quality }) };
        break;
      default:
        throw new EdgeImageError(`unknown image operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }
  const to = (output?.format ?? format) as keyof FormatEnum;
  const quality = output?.quality;
  if (quality !== undefined && !(Number.isInteger(quality) && quality >= 1 && quality <= 100)) {
    throw new EdgeImageError(`quality ${quality} is not a whole number from 1 to 100`);
  }
  const out = await image
    .toFormat(to, quality === undefined ? {} : { quality })
    .toBuffer({ resolveWithObject: true });
  return {
    body: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength),
    format: out.info.format,
    width: out.info.width,
    height: out.info.height,
  };
}
