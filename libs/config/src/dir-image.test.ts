import { describe, expect, it } from "vitest";
import { DIR_IMAGES_OFF, DirImageRootsSchema, dirImageRefusal, initPrograms } from "./dir-image.js";

const roots = ["/srv/examples", "/home/dev/apps"];

describe("HANGAR_DIR_IMAGE_ROOTS", () => {
  it("is off when unset or empty", () => {
    expect(DirImageRootsSchema.parse(undefined)).toEqual([]);
    expect(DirImageRootsSchema.parse("")).toEqual([]);
  });

  it("lists colon-separated folders, normalised", () => {
    expect(DirImageRootsSchema.parse("/srv/examples/:/home//dev/./apps::")).toEqual(roots);
  });

  it("refuses / and relative or .. roots", () => {
    for (const bad of ["/", "//", "/srv:/", "srv/examples", "/srv/../etc"]) {
      expect(DirImageRootsSchema.safeParse(bad).success, bad).toBe(false);
    }
    expect(DirImageRootsSchema.safeParse("/").error?.issues[0]?.message).toBe(
      "/ cannot be a dir: image root: list the folders to run",
    );
  });
});

describe("dirImageRefusal", () => {
  it("lets OCI images through whatever the roots", () => {
    expect(dirImageRefusal({ image: "nginx:latest", init: { exec: ["/bin/sh"] } }, [])).toBeUndefined();
  });

  it("refuses every dir: image without roots, saying how to enable them", () => {
    expect(dirImageRefusal({ image: "dir:/srv/examples/hello" }, [])).toBe(DIR_IMAGES_OFF);
    expect(DIR_IMAGES_OFF).toContain("set HANGAR_DIR_IMAGE_ROOTS=<folder>[:<folder>...]");
  });

  it("allows a folder under a root, or the root itself", () => {
    expect(dirImageRefusal({ image: "dir:/srv/examples/hello" }, roots)).toBeUndefined();
    expect(dirImageRefusal({ image: "dir:/srv/examples" }, roots)).toBeUndefined();
    expect(dirImageRefusal({ image: "dir:/home/dev/apps/x/" }, roots)).toBeUndefined();
  });

  it("refuses dir:/ even with roots", () => {
    for (const image of ["dir:/", "dir://", "dir:/./"]) {
      expect(dirImageRefusal({ image }, roots), image).toMatch(/^dir:\/ is refused/);
    }
  });

  it("refuses folders outside the roots, lookalike prefixes included", () => {
    for (const image of ["dir:/srv", "dir:/srv/examples-other", "dir:/etc", "dir:/srv//examplesx"]) {
      expect(dirImageRefusal({ image }, roots), image).toMatch(/is not under HANGAR_DIR_IMAGE_ROOTS/);
    }
  });

  it("refuses .. anywhere, even when it would land inside a root", () => {
    expect(dirImageRefusal({ image: "dir:/srv/examples/../examples/hello" }, roots)).toMatch(
      /may not use \.\./,
    );
    expect(
      dirImageRefusal({ image: "dir:/srv/examples/hello", init: { cmd: ["../../../bin/sh"] } }, roots),
    ).toMatch(/may not use \.\./);
  });

  it("refuses init programs named by a path outside the roots: /bin/sh with a root allowed", () => {
    const hello = "dir:/srv/examples/hello";
    expect(dirImageRefusal({ image: hello, init: { exec: ["/bin/sh", "-c", "id"] } }, roots)).toBe(
      "init.exec /bin/sh is outside HANGAR_DIR_IMAGE_ROOTS: a dir: machine runs programs by path only from under those folders (a bare name such as node is looked up inside the machine)",
    );
    expect(dirImageRefusal({ image: hello, init: { entrypoint: ["/usr/bin/env"] } }, roots)).toMatch(
      /^init.entrypoint \/usr\/bin\/env is outside/,
    );
    expect(dirImageRefusal({ image: hello, init: { cmd: ["/srv/other/run"] } }, roots)).toMatch(
      /^init.cmd \/srv\/other\/run is outside/,
    );
  });

  it("allows bare program names and paths inside the roots", () => {
    const hello = "dir:/srv/examples/hello";
    for (const init of [
      { exec: ["node", "server.js"] },
      { cmd: ["npm", "start"] },
      { exec: ["./bin/run"] },
      { entrypoint: ["/home/dev/apps/tools/run"], cmd: ["bin/serve"] },
    ]) {
      expect(dirImageRefusal({ image: hello, init }, roots), JSON.stringify(init)).toBeUndefined();
    }
  });
});

describe("initPrograms", () => {
  it("lists the first word of exec, entrypoint and cmd that are paths, resolved against the folder", () => {
    expect(
      initPrograms(
        { image: "dir:/srv/a", init: { exec: ["./run"], entrypoint: ["node"], cmd: ["/bin/sh", "-c"] } },
        "/srv/a",
      ),
    ).toEqual([
      { field: "init.exec", path: "/srv/a/run" },
      { field: "init.cmd", path: "/bin/sh" },
    ]);
  });
});
