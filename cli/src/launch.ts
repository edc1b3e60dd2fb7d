import { readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { EdgeConfigSchema } from "@hangar/config";
import { CliError } from "./cli-error.js";

/** What `hangar launch` found in a folder. */
export type Project =
  | { kind: "dockerfile"; exposedPort?: number }
  /** An edge app: an entry that calls fly.http.respondWith or has `export default { fetch }`. */
  | { kind: "edge"; entry: string; packageName?: string }
  | {
      kind: "node";
      /** Next.js is built with `next build` and served with `next start`. */
      framework: "next" | "plain";
      /** How a plain Node app starts: its start script, or `node <main>`. */
      start: { script: "start" } | { main: string };
      hasDependencies: boolean;
      packageName?: string;
    };

interface PackageJson {
  name?: unknown;
  main?: unknown;
  scripts?: Record<string, unknown>;
  dependencies?: Record<string, unknown>;
  devDependencies?: Record<string, unknown>;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === "ENOENT" ||
      (err as NodeJS.ErrnoException).code === "EISDIR"
    ) {
      return undefined;
    }
    throw err;
  }
}

/** The first port a Dockerfile EXPOSEs (`EXPOSE 3000`, `EXPOSE 8080/tcp`). */
export function exposedPort(dockerfile: string): number | undefined {
  const m = /^\s*EXPOSE\s+(\d+)/im.exec(dockerfile);
  return m ? Number(m[1]) : undefined;
}

/**
 * Detects an existing Dockerfile, else an edge app (an entry libs/edge's detectEdgeEntry finds), else
 * a Node app (package.json with a start script, a main, or Next.js).
 */
export async function detectProject(dir: string): Promise<Project> {
  const dockerfile = await readText(join(dir, "Dockerfile"));
  if (dockerfile !== undefined) {
    const port = exposedPort(dockerfile);
    return port === undefined ? { kind: "dockerfile" } : { kind: "dockerfile", exposedPort: port };
  }
  const text = await readText(join(dir, "package.json"));
  // Loaded only here: @hangar/edge also holds the runtime, a native addon other commands need not load.
  const { detectEdgeEntry } = await import("@hangar/edge");
  const entry = await detectEdgeEntry(dir);
  if (entry !== undefined) {
    let name: unknown;
    try {
      name = text === undefined ? undefined : (JSON.parse(text) as PackageJson).name;
    } catch {
      // The entry was found without it; the folder names the app.
    }
    return { kind: "edge", entry, ...(typeof name === "string" ? { packageName: name } : {}) };
  }
  if (text === undefined) {
    throw new CliError(
      `nothing to launch in ${dir}: no Dockerfile and no package.json`,
      "write a Dockerfile, or run `hangar launch` in a Node project",
    );
  }
  let pkg: PackageJson;
  try {
    pkg = JSON.parse(text) as PackageJson;
  } catch (err) {
    throw new CliError(`cannot parse ${join(dir, "package.json")}: ${(err as Error).message}`);
  }
  const dependencies = Object.keys(pkg.dependencies ?? {});
  const isNext = dependencies.includes("next") || Object.hasOwn(pkg.devDependencies ?? {}, "next");
  const packageName = typeof pkg.name === "string" ? { packageName: pkg.name } : {};
  const base = { kind: "node" as const, hasDependencies: dependencies.length > 0, ...packageName };
  if (isNext) return { ...base, framework: "next", start: { script: "start" } };
  if (typeof pkg.scripts?.start === "string")
    return { ...base, framework: "plain", start: { script: "start" } };
  if (typeof pkg.main === "string" && pkg.main !== "") {
    return { ...base, framework: "plain", start: { main: pkg.main } };
  }
  throw new CliError(
    `cannot tell how to start the Node app in ${dir}: package.json has no start script and no main`,
    'add "scripts": {"start": "node server.js"} to package.json, or write a Dockerfile',
  );
}

/** The port the app listens on: --port, else the Dockerfile's EXPOSE, else Next's 3000 or 8080. */
export function appPort(project: Project, flag: number | undefined): number {
  if (flag !== undefined) return flag;
  if (project.kind === "dockerfile") return project.exposedPort ?? 8080;
  if (project.kind === "edge") return 8080;
  return project.framework === "next" ? 3000 : 8080;
}

/** A Dockerfile for a Node app, on the Node major version this CLI runs on. */
export function nodeDockerfile(
  project: Extract<Project, { kind: "node" }>,
  port: number,
  nodeMajor: string = process.versions.node.split(".")[0] as string,
): string {
  const lines = [`FROM node:${nodeMajor}`, "WORKDIR /app", "COPY package*.json ./"];
  if (project.framework === "next") {
    // `next build` needs the dev dependencies too (TypeScript, ESLint, PostCSS...).
    lines.push("RUN npm install", "COPY . .", "RUN npx next build");
  } else {
    if (project.hasDependencies) lines.push("RUN npm install --omit=dev");
    lines.push("COPY . .");
  }
  lines.push(`ENV PORT=${port}`, `EXPOSE ${port}`);
  const cmd =
    project.framework === "next"
      ? ["npx", "next", "start"]
      : "script" in project.start
        ? ["npm", "start"]
        : ["node", project.start.main];
  lines.push(`CMD ${JSON.stringify(cmd).replaceAll(",", ", ")}`);
  return `${lines.join("\n")}\n`;
}

/** The .dockerignore written next to a generated Dockerfile. */
export const NODE_DOCKERIGNORE = "node_modules\n.git\n";

/** What hangar.toml is written with. */
export interface HangarTomlOptions {
  app: string;
  region: string;
  port: number;
  dockerfile?: string;
}

/** hangar.toml with defaults that scale to zero: auto stop and start, 20 connections per machine, a check on /. */
export function hangarToml(o: HangarTomlOptions): string {
  const q = JSON.stringify;
  return `# App configuration for \`hangar deploy\` (the fly.toml format).
app = ${q(o.app)}
primary_region = ${q(o.region)}

[build]
  dockerfile = ${q(o.dockerfile ?? "Dockerfile")}

[http_service]
  internal_port = ${o.port}
  force_https = false
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0

  [http_service.concurrency]
    type = "connections"
    soft_limit = 20

  [[http_service.checks]]
    grace_period = "2s"
    interval = "5s"
    timeout = "2s"
    method = "GET"
    path = "/"
`;
}

/** hangar.toml of an edge app: its entry, and the runtime's limits written out so they are easy to change. */
export function edgeHangarToml(o: { app: string; region: string; entry: string }): string {
  const q = JSON.stringify;
  const limits = EdgeConfigSchema.parse({});
  return `# App configuration for \`hangar deploy\` (the fly.toml format, with Hangar's [edge]).
# An edge app runs in the proxies (V8 isolates), with no machines: \`hangar edge dev\` serves it here.
app = ${q(o.app)}
primary_region = ${q(o.region)}

[edge]
  entry = ${q(o.entry)}
  # CPU time per request (ms) and the isolate's heap (MB).
  cpu_ms = ${limits.cpu_ms}
  memory_mb = ${limits.memory_mb}
`;
}

/** An app name made from a package or folder name: lowercase letters, digits and dashes, at most 63. */
export function appNameFrom(name: string): string {
  const slug = name
    .replace(/^@[^/]*\//, "")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .slice(0, 63)
    .replace(/^-+|-+$/g, "");
  return slug === "" ? "app" : slug;
}

/** The default app name of a project in `dir`: its package name, else the folder's name. */
export function defaultAppName(dir: string, project: Project): string {
  return appNameFrom(
    project.kind !== "dockerfile" && project.packageName ? project.packageName : basename(dir),
  );
}

/** What happened to one file launch wanted to write. */
export type FileOutcome = "written" | "overwritten" | "kept";

/** Writes `text` to `file` unless it exists (then "kept"); with `overwrite`, replaces it. */
export async function writeNew(file: string, text: string, overwrite: boolean): Promise<FileOutcome> {
  try {
    await writeFile(file, text, { flag: "wx" });
    return "written";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  if (!overwrite) return "kept";
  await writeFile(file, text);
  return "overwritten";
}
