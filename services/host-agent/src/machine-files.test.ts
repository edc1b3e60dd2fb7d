import { describe, expect, it } from "vitest";
import { DEFAULT_FILE_MODE, MachineFilesError, machineFiles } from "./machine-files.js";

const decoded = (files: ReturnType<typeof machineFiles>) =>
  files.map((f) => ({ ...f, content: Buffer.from(f.content).toString() }));

describe("machineFiles", () => {
  it("decodes raw_value and the named secret (base64, as on Fly), with Fly's default mode", () => {
    const files = machineFiles(
      [
        { guest_path: "/etc/a", raw_value: "aGk=" },
        { guest_path: "/etc/s", secret_name: "TOKEN", mode: 0o400, raw_value: null },
      ],
      { TOKEN: "czNjcjN0\n", OTHER: "x" },
      "web",
    );
    expect(decoded(files)).toEqual([
      { guestPath: "/etc/a", content: "hi", mode: DEFAULT_FILE_MODE },
      { guestPath: "/etc/s", content: "s3cr3t", mode: 0o400 },
    ]);
  });

  it("fails the start when the secret is not deployed, or not base64, naming only the secret", () => {
    expect(() => machineFiles([{ guest_path: "/s", secret_name: "MISSING" }], {}, "web")).toThrow(
      new MachineFilesError(
        "file /s: app web has no deployed secret MISSING; set it with `hangar secrets set MISSING=<the contents, base64-encoded> -a web`",
      ),
    );
    let error: Error | undefined;
    try {
      machineFiles([{ guest_path: "/s", secret_name: "PLAIN" }], { PLAIN: "not base64!" }, "web");
    } catch (err) {
      error = err as Error;
    }
    expect(error).toBeInstanceOf(MachineFilesError);
    expect(error?.message).toMatch(/^file \/s: secret PLAIN is not base64/);
    expect(error?.message).not.toContain("not base64!");
    // A name inherited by every object is not a secret.
    expect(() => machineFiles([{ guest_path: "/s", secret_name: "toString" }], {}, "web")).toThrow(
      MachineFilesError,
    );
  });
});
