import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DIR_IMAGES_OFF } from "@hangar/config";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { config } from "./config.js";
import { admitDirImage, DirImageRefusedError } from "./dir-image.js";

// A root with an app, a symlink out to /etc and one to /bin/sh, and a folder beside the root.
let base: string;
let root: string;
let app: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "hangar-dir-image-"));
  root = join(base, "examples");
  app = join(root, "app");
  await mkdir(join(app, "bin"), { recursive: true });
  await writeFile(join(app, "bin", "run"), "#!/bin/sh\n", { mode: 0o755 });
  await symlink("/etc", join(root, "etc-link"));
  await symlink("/bin/sh", join(app, "sh-link"));
  await symlink(app, join(base, "app-link"));
  await mkdir(join(base, "beside"));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const refusal = (image: string, init?: Record<string, string[]>, roots = [root]) =>
  admitDirImage({ image, ...(init ? { init } : {}) }, roots).then(
    () => undefined,
    (err: Error) => {
      expect(err).toBeInstanceOf(DirImageRefusedError);
      return err.message;
    },
  );

describe("admitDirImage on the host", () => {
  it("has no roots unless HANGAR_DIR_IMAGE_ROOTS is set: dir: images are off", () => {
    expect(config.load({}).HANGAR_DIR_IMAGE_ROOTS).toEqual([]);
    expect(config.load({ HANGAR_DIR_IMAGE_ROOTS: root }).HANGAR_DIR_IMAGE_ROOTS).toEqual([root]);
  });

  it("refuses every dir: image without roots", async () => {
    expect(await refusal(`dir:${app}`, undefined, [])).toBe(DIR_IMAGES_OFF);
  });

  it("runs a folder under a root, from its real path, with programs inside the roots", async () => {
    expect(await admitDirImage({ image: `dir:${app}` }, [root])).toBe(app);
    expect(await admitDirImage({ image: `dir:${app}`, init: { exec: ["./bin/run"] } }, [root])).toBe(app);
    expect(await admitDirImage({ image: `dir:${app}`, init: { cmd: ["node", "x.js"] } }, [root])).toBe(app);
  });

  it("allows a folder reached through a link outside the roots when its real path is inside", async () => {
    expect(
      await admitDirImage({ image: `dir:${join(base, "app-link")}` }, [root, join(base, "app-link")]),
    ).toBe(app);
  });

  it("refuses dir:/ and init.exec /bin/sh with a root allowed", async () => {
    expect(await refusal("dir:/")).toMatch(/^dir:\/ is refused/);
    expect(await refusal(`dir:${app}`, { exec: ["/bin/sh"] })).toMatch(/^init.exec \/bin\/sh is outside/);
  });

  it("refuses a symlink under a root that leads outside it, as folder or as program", async () => {
    expect(await refusal(`dir:${join(root, "etc-link")}`)).toMatch(
      /is not under HANGAR_DIR_IMAGE_ROOTS \(its real path is \/etc\): add its folder/,
    );
    expect(await refusal(`dir:${app}`, { exec: ["./sh-link"] })).toMatch(
      /^init.exec \/\S+ is outside HANGAR_DIR_IMAGE_ROOTS/,
    );
  });

  it("refuses folders and programs that do not exist, and folders beside the root", async () => {
    expect(await refusal(`dir:${join(root, "missing")}`)).toMatch(/does not exist on host$/);
    expect(await refusal(`dir:${app}`, { entrypoint: ["bin/missing"] })).toBe(
      `init.entrypoint ${join(app, "bin", "missing")} does not exist on host`,
    );
    expect(await refusal(`dir:${join(base, "beside")}`)).toMatch(/is not under HANGAR_DIR_IMAGE_ROOTS/);
  });
});
