/** fly.image: image operations (`@fly/image`), done by the host (EdgeHost.image, with sharp). */
import type { EdgeImageOp, EdgeImageResult } from "../contract.js";
import { callHost } from "./host.js";

export const image = {
  /** The image `input` with `ops` done in order. */
  async transform(input: unknown, ops: unknown): Promise<EdgeImageResult> {
    if (!(input instanceof Uint8Array)) throw new TypeError("fly.image.transform: the image is a Uint8Array");
    if (!Array.isArray(ops)) throw new TypeError("fly.image.transform: the operations are an array");
    return (await callHost("image", input, ops as EdgeImageOp[])) as EdgeImageResult;
  },
};
