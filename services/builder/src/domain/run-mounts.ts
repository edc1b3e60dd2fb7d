import { posix } from "node:path";

/** Where a bind mount reads from before it knows the stage list: the context, or a stage or image name. */
export type MountFrom = { kind: "context" } | { kind: "named"; name: string };

/** A `RUN --mount=type=cache`: a folder kept between builds of the app, never part of a layer. */
export interface CacheMount {
  type: "cache";
  /** The cache's name: `id=`, else the target. */
  id: string;
  target: string;
  readOnly: boolean;
  /** BuildKit's sharing mode; the builder gives each cache to one RUN at a time whatever it says. */
  sharing: "shared" | "private" | "locked";
  uid: number;
  gid: number;
  mode: number;
}

/** A `RUN --mount=type=secret`: a build secret as a file on a tmpfs, or an environment variable. */
export interface SecretMount {
  type: "secret";
  id: string;
  /** The file's path; undefined when only `env=` was asked for. */
  target: string | undefined;
  env: string | undefined;
  required: boolean;
  uid: number;
  gid: number;
  mode: number;
}

/** A `RUN --mount=type=bind`: a folder or file of the context, a stage or an image, writes discarded. */
export interface BindMount<From = MountFrom> {
  type: "bind";
  target: string;
  /** The path in the source, relative to its root. */
  source: string;
  from: From;
  readWrite: boolean;
}

/** One parsed `--mount` of a RUN. */
export type RunMount<From = MountFrom> = CacheMount | SecretMount | BindMount<From>;

/** A `--mount` spec that does not parse; the message says what to write instead. */
export class MountSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MountSpecError";
  }
}

const KEYS: Record<RunMount["type"], string[]> = {
  cache: ["id", "target", "ro", "readonly", "sharing", "uid", "gid", "mode", "rw", "readwrite"],
  secret: ["id", "target", "env", "required", "uid", "gid", "mode"],
  bind: ["target", "source", "from", "rw", "readwrite", "ro", "readonly"],
};
const ALIASES: Record<string, string> = { dst: "target", destination: "target", src: "source" };
const TRUE_ONLY = new Set(["ro", "readonly", "rw", "readwrite", "required"]);

/**
 * Parses one `--mount=` value (after substitution) as BuildKit reads it: comma-separated key=value
 * fields, `type=` first or anywhere (bind when absent), boolean keys with or without `=true`.
 * Relative targets are taken from the RUN's working directory.
 */
export function parseRunMount(spec: string, cwd: string): RunMount {
  const fields = new Map<string, string>();
  for (const part of spec.split(",")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawKey = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const key = ALIASES[rawKey] ?? rawKey;
    const value = eq < 0 ? "" : part.slice(eq + 1);
    if (eq < 0 && !TRUE_ONLY.has(key))
      throw new MountSpecError(`--mount field ${key} needs a value (${key}=...)`);
    if (fields.has(key)) throw new MountSpecError(`--mount field ${key} is given twice`);
    fields.set(key, value);
  }
  const type = fields.get("type") ?? "bind";
  fields.delete("type");
  if (type !== "cache" && type !== "secret" && type !== "bind") {
    throw new MountSpecError(
      `--mount type=${type} is not supported by Hangar's builder (it takes type=cache, type=secret and type=bind)`,
    );
  }
  for (const key of fields.keys()) {
    if (!KEYS[type].includes(key)) {
      throw new MountSpecError(
        `--mount type=${type} has no field ${key} (it takes ${KEYS[type].join(", ")})`,
      );
    }
  }
  const flag = (name: string) => {
    const v = fields.get(name);
    if (v === undefined) return false;
    if (v === "" || v === "true") return true;
    if (v === "false") return false;
    throw new MountSpecError(`--mount field ${name}=${v} is not true or false`);
  };
  const num = (name: string, fallback: number, base = 10) => {
    const v = fields.get(name);
    if (v === undefined) return fallback;
    const n = Number.parseInt(v, base);
    if (!/^[0-9]+$/.test(v) || Number.isNaN(n) || (base === 8 && /[89]/.test(v))) {
      throw new MountSpecError(
        `--mount field ${name}=${v} is not ${base === 8 ? "an octal mode" : "a number"}`,
      );
    }
    return n;
  };
  const target = (required: boolean) => {
    const t = fields.get("target");
    if (t === undefined || t === "") {
      if (required) throw new MountSpecError(`--mount type=${type} needs target=<path>`);
      return undefined;
    }
    return posix.resolve(cwd, t);
  };
  switch (type) {
    case "cache": {
      const sharing = fields.get("sharing") ?? "shared";
      if (sharing !== "shared" && sharing !== "private" && sharing !== "locked") {
        throw new MountSpecError(`--mount sharing=${sharing} is not shared, private or locked`);
      }
      const t = target(true) as string;
      return {
        type,
        id: fields.get("id") || t,
        target: t,
        readOnly: flag("ro") || flag("readonly"),
        sharing,
        uid: num("uid", 0),
        gid: num("gid", 0),
        mode: num("mode", 0o755, 8),
      };
    }
    case "secret": {
      const t = target(false);
      const env = fields.get("env") || undefined;
      const id = fields.get("id") || (t ? posix.basename(t) : "");
      if (id === "") throw new MountSpecError("--mount type=secret needs id=<name> (or a target to name it)");
      return {
        type,
        id,
        // BuildKit mounts the file at /run/secrets/<id> unless only an environment variable was asked for.
        target: t ?? (env ? undefined : `/run/secrets/${id}`),
        env,
        required: flag("required"),
        uid: num("uid", 0),
        gid: num("gid", 0),
        mode: num("mode", 0o400, 8),
      };
    }
    case "bind": {
      const from = fields.get("from");
      const rw = flag("rw") || flag("readwrite");
      const ro = flag("ro") || flag("readonly");
      return {
        type,
        target: target(true) as string,
        source: posix.normalize(`/${fields.get("source") ?? ""}`).slice(1),
        from: from ? { kind: "named", name: from } : { kind: "context" },
        readWrite: rw && !ro,
      };
    }
  }
}
