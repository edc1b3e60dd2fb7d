import { describe, expect, it } from "vitest";
import { UploadProgress } from "./upload.js";

describe("UploadProgress", () => {
  it("writes a line per quarter, then the total, without a terminal", () => {
    const lines: string[] = [];
    const p = new UploadProgress(4000, (t) => lines.push(t), false);
    for (let i = 0; i < 40; i++) p.add(100);
    p.done();
    expect(lines).toEqual([
      "Uploading build context: 1.0 kB of 4.0 kB (25%)\n",
      "Uploading build context: 2.0 kB of 4.0 kB (50%)\n",
      "Uploading build context: 3.0 kB of 4.0 kB (75%)\n",
      "Uploading build context: 4.0 kB of 4.0 kB (100%)\n",
    ]);
  });

  it("redraws one line on a terminal, at most every 100 ms", () => {
    const lines: string[] = [];
    let now = 1000;
    const p = new UploadProgress(
      1000,
      (t) => lines.push(t),
      true,
      () => now,
    );
    p.add(100);
    p.add(100);
    now += 150;
    p.add(300);
    p.done();
    expect(lines).toEqual([
      "\rUploading build context: 100 B of 1.0 kB (10%)\x1b[K",
      "\rUploading build context: 500 B of 1.0 kB (50%)\x1b[K",
      "\rUploading build context: 500 B of 1.0 kB (50%)\x1b[K\n",
    ]);
  });
});
