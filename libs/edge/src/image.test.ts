import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { EDGE_IMAGE_MAX_SIDE, EdgeImageError, transformImage } from "./image.js";

/** A PNG of one colour. */
const solid = (width: number, height: number, background: string) =>
  sharp({ create: { width, height, channels: 3, background } })
    .png()
    .toBuffer();

/** The RGB of the pixel at x, y. */
async function pixel(image: Uint8Array, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...data.subarray(at, at + 3)];
}

describe("transformImage", () => {
  it("resizes (cover crops to the box, inside keeps the ratio) and keeps the input's format", async () => {
    const red = await solid(400, 200, "#ff0000");
    const cover = await transformImage(red, [{ op: "resize", width: 100, height: 100 }]);
    expect(cover).toMatchObject({ format: "png", width: 100, height: 100 });
    const inside = await transformImage(red, [{ op: "resize", width: 100, height: 100, fit: "inside" }]);
    expect(inside).toMatchObject({ width: 100, height: 50 });
    const meta = await sharp(inside.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 100, 50]);
  });

  it("lays a watermark in a corner, after a resize, and converts to another format", async () => {
    const red = await solid(400, 400, "#ff0000");
    const blue = await solid(20, 20, "#0000ff");
    const out = await transformImage(red, [
      { op: "resize", width: 100 },
      { op: "overlay", image: blue, gravity: "southeast" },
      { op: "format", format: "png" },
    ]);
    expect(out).toMatchObject({ width: 100, height: 100 });
    expect(await pixel(out.body, 95, 95)).toEqual([0, 0, 255]);
    expect(await pixel(out.body, 5, 5)).toEqual([255, 0, 0]);
    const webp = await transformImage(red, [
      { op: "grayscale" },
      { op: "format", format: "webp", quality: 50 },
    ]);
    expect((await sharp(webp.body).metadata()).format).toBe("webp");
  });

  it("rotates, flips and flops", async () => {
    const wide = await solid(40, 20, "#00ff00");
    const turned = await transformImage(wide, [{ op: "rotate", angle: 90 }, { op: "flip" }, { op: "flop" }]);
    expect([turned.width, turned.height]).toEqual([20, 40]);
  });

  it("refuses what an app got wrong with EdgeImageError: sizes, no size, unknown operations, bytes that are no image", async () => {
    const img = await solid(10, 10, "#000000");
    await expect(transformImage(img, [{ op: "resize", width: EDGE_IMAGE_MAX_SIDE + 1 }])).rejects.toThrow(
      EdgeImageError,
    );
    await expect(transformImage(img, [{ op: "resize" }])).rejects.toThrow(/needs a width or a height/);
    await expect(transformImage(img, [{ op: "explode" } as never])).rejects.toThrow(
      /unknown image operation/,
    );
    await expect(transformImage(img, [{ op: "format", format: "png", quality: 0 }])).rejects.toThrow(
      /quality/,
    );
    await expect(transformImage(new TextEncoder().encode("not an image"), [])).rejects.toThrow();
    await expect(transformImage(new Uint8Array(), [])).rejects.toThrow(/no bytes/);
  });

  it("refuses an image that would decode to more pixels than the limit (a small file, a huge image)", async () => {
    const huge = await sharp({ create: { width: 10_000, height: 5_000, channels: 3, background: "#000" } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(huge.byteLength).toBeLessThan(1_000_000);
    await expect(transformImage(huge, [{ op: "resize", width: 10 }])).rejects.toThrow(/pixel/i);
  });
});
