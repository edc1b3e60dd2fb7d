import { describe, expect, it } from "vitest";
import {
  decodeBase64,
  FileWithoutContentError,
  guestPathProblem,
  isBase64,
  LocalFileNotReadError,
  machineFile,
} from "./files.js";
import { MachineConfigSchema } from "./machine-config.js";
import { machineConfigFromApp } from "./machine-from-app.js";
import { parseAppConfig } from "./parse-app-config.js";
import { ReleaseConfigSchema } from "./release-config.js";
import { validate } from "./validate.js";

function message(config: unknown): string {
  const result = validate(MachineConfigSchema, config);
  if (result.ok) throw new Error("expected a validation failure");
  return result.message;
}

describe("machineFile", () => {
  it("carries raw_value base64-encoded, as flyctl's toMachineFile does (the fly.toml holds the text)", () => {
    expect(machineFile({ guest_path: "/etc/a.conf", raw_value: "hello world\n" })).toEqual({
      guest_path: "/etc/a.conf",
      raw_value: "aGVsbG8gd29ybGQK",
    });
  });

  it("names the secret, never its value", () => {
    expect(machineFile({ guest_path: "/run/s", secret_name: "TOKEN" })).toEqual({
      guest_path: "/run/s",
      secret_name: "TOKEN",
    });
  });

  it("takes a local_path's bytes from what the deploy read, and prefers it as flyctl does", () => {
    const file = { guest_path: "/a.bin", local_path: "a.bin", raw_value: "ignored" };
    expect(machineFile({ ...file, local_content: "AP8=" })).toEqual({
      guest_path: "/a.bin",
      raw_value: "AP8=",
    });
    expect(() => machineFile(file)).toThrow(LocalFileNotReadError);
    expect(() => machineFile(file)).toThrow("[[files]] /a.bin: local_path a.bin was not read by the deploy");
  });

  it("refuses an entry with nothing to write", () => {
    expect(() => machineFile({ guest_path: "/x" })).toThrow(FileWithoutContentError);
  });
});

describe("machineConfigFromApp with [[files]]", () => {
  const { config } = parseAppConfig(
    [
      "[processes]",
      'app = "node server.js"',
      'worker = "node worker.js"',
      "[[files]]",
      'guest_path = "/etc/app.txt"',
      'raw_value = "hi"',
      "[[files]]",
      'guest_path = "/etc/worker.key"',
      'secret_name = "WORKER_KEY"',
      'processes = ["worker"]',
      "[[files]]",
      'guest_path = "/etc/both.pem"',
      'local_path = "certs/both.pem"',
      'processes = ["app", "worker"]',
      "",
    ].join("\n"),
    "fly.toml",
  );
  // As the release records it: the deploy read the local file.
  const released = {
    ...config,
    files: config.files?.map((f) => (f.local_path ? { ...f, local_content: "cGVt" } : f)),
  };

  it("gives each group its files: those without processes to the default group only", () => {
    expect(machineConfigFromApp(released, "img", { processGroup: "app" }).files).toEqual([
      { guest_path: "/etc/app.txt", raw_value: "aGk=" },
      { guest_path: "/etc/both.pem", raw_value: "cGVt" },
    ]);
    expect(machineConfigFromApp(released, "img", { processGroup: "worker" }).files).toEqual([
      { guest_path: "/etc/worker.key", secret_name: "WORKER_KEY" },
      { guest_path: "/etc/both.pem", raw_value: "cGVt" },
    ]);
  });

  it("loads [[files]] without a warning", () => {
    const { warnings } = parseAppConfig('[[files]]\nguest_path = "/a"\nsecret_name = "S"\n', "fly.toml");
    expect(warnings).toEqual([]);
  });
});

describe("machine files as the Machines API takes them", () => {
  it("wants a path to a file that cannot leave the root filesystem", () => {
    expect(guestPathProblem("/etc/app/config.json")).toBeUndefined();
    for (const path of ["/", "/etc/", "/a//b", "/a/../../etc/shadow", "/a/./b", "/.."]) {
      expect(guestPathProblem(path), path).toBe(
        "expected an absolute path to a file, without empty, . or .. segments",
      );
    }
    for (const path of ["/proc/1/environ", "/sys/x", "/dev/null"]) {
      expect(guestPathProblem(path), path).toBe(
        "expected a path outside /proc, /sys and /dev, which the machine's kernel filesystems cover",
      );
    }
    expect(guestPathProblem("/devices/x")).toBeUndefined();
    expect(guestPathProblem("etc/x")).toBe("expected an absolute path");
    expect(guestPathProblem("/a\0b")).toBe("expected a path without NUL bytes");
    expect(message({ image: "x", files: [{ guest_path: "/../etc/passwd", raw_value: "" }] })).toBe(
      "files.0.guest_path: expected an absolute path to a file, without empty, . or .. segments",
    );
  });

  it("wants raw_value in standard padded base64, as Go decodes it", () => {
    for (const ok of ["", "aGk=", "aGVsbG8gd29ybGQK", "AP8+/w=="]) expect(isBase64(ok), ok).toBe(true);
    for (const bad of ["aGk", "hello!", "aG k=", "aGk==", "-_8="]) expect(isBase64(bad), bad).toBe(false);
    expect(decodeBase64("aGk=")?.toString()).toBe("hi");
    expect(decodeBase64("secret")).toBeUndefined();
    expect(message({ image: "x", files: [{ guest_path: "/a", raw_value: "not base64" }] })).toBe(
      "files.0.raw_value: expected standard base64 with padding",
    );
  });

  it("wants exactly one of raw_value or secret_name, permission bits, and no image_config", () => {
    expect(message({ image: "x", files: [{ guest_path: "/a" }] })).toBe(
      "files.0: expected one of raw_value or secret_name",
    );
    expect(message({ image: "x", files: [{ guest_path: "/a", raw_value: "", secret_name: "S" }] })).toBe(
      "files.0: expected one of raw_value or secret_name",
    );
    expect(message({ image: "x", files: [{ guest_path: "/a", secret_name: "S", mode: 0o4755 }] })).toBe(
      "files.0.mode: expected permission bits, at most 0o777 (511)",
    );
    expect(message({ image: "x", files: [{ guest_path: "/a", image_config: "img" }] })).toMatch(
      /^files\.0\.image_config: image_config is not supported by Hangar: give raw_value or secret_name/,
    );
    const ok = validate(MachineConfigSchema, {
      image: "x",
      files: [{ guest_path: "/a", secret_name: "S", mode: 0o600, raw_value: null }],
    });
    expect(ok.ok).toBe(true);
  });
});

describe("a release's config", () => {
  it("takes the local_content hangar deploy read, in base64; a fly.toml does not", () => {
    const files = [{ guest_path: "/a", local_path: "a.txt", local_content: "AP8K" }];
    expect(ReleaseConfigSchema.safeParse({ files }).success).toBe(true);
    const bad = ReleaseConfigSchema.safeParse({ files: [{ ...files[0], local_content: "not base64" }] });
    expect(bad.error?.issues[0]?.message).toBe("expected standard base64 with padding");
    // A path a machine's config.files refuses is refused when the release is deployed (a 400), not
    // when fly.toml loads (flyctl loads any path).
    const climbing = ReleaseConfigSchema.safeParse({
      files: [{ guest_path: "/etc/../root/x", raw_value: "x" }],
    });
    expect(climbing.error?.issues[0]?.path).toEqual(["files", 0, "guest_path"]);
    expect(
      parseAppConfig('[[files]]\nguest_path = "/etc/../root/x"\nraw_value = "x"\n', "fly.toml").config.files,
    ).toHaveLength(1);
    const { config, warnings } = parseAppConfig(
      '[[files]]\nguest_path = "/a"\nlocal_path = "a.txt"\nlocal_content = "AP8K"\n',
      "fly.toml",
    );
    expect(warnings).toEqual(["fly.toml:4: unknown key files[0].local_content (ignored)"]);
    expect(config.files).toEqual([{ guest_path: "/a", local_path: "a.txt" }]);
  });
});
