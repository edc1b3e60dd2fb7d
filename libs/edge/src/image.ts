/**
 * Image operations of edge apps (`@fly/image`), done in the host with sharp: the proxy's EdgeHost and
 * `hangar edge dev`/`test`'s both call transformImage. Inputs are bounded (bytes and pixels) so that a
 * small compressed image cannot make the host decode a huge one; sharp runs on libuv's thread pool,
 * outside the app's CPU limit, which counts only the isolate's own time.
 */
import sharp, { type FormatEnum, type OverlayOptions, type Sharp } from "sharp";
import { EDGE_BODY_MAX_BYTES, type EdgeImageOp, type EdgeImageResult } from "./contract.js";

/** The most pixels an input (or an overlay) may decode to: 40 megapixels. */
export const EDGE_IMAGE_MAX_PIXELS = 40_000_000;
/** The largest width or height an app may ask for. */
export const EDGE_IMAGE_MAX_SIDE = 8_192;
/** The most operations one image may take. */
export const EDGE_IMAGE_MAX_OPS = 32;

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
  sharp(bytes, { limitInputPixels: EDGE_IMAGE_MAX_PIXELS, failOn: "error" });

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
  const format = (await image.metadata()).format;
  if (!format) throw new EdgeImageError("the image's format is not one sharp reads");
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
        if (!(op.sigma >= 0.3 && op.sigma <= 100))
          throw new EdgeImageError(`blur: sigma ${op.sigma} is not from 0.3 to 100`);
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
