import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAppConfig } from "@hangar/config";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createContext } from "./context.js";
import { appNameFrom, appPort, detectProject, exposedPort, hangarToml, nodeDockerfile } from "./launch.js";
import { runCli } from "./program.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "hangar-launch-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<void> {
  await mkdir(join(dir, name, ".."), { recursive: true });
  await writeFile(join(dir, name), text);
}

const pkg = (value: unknown) => write("package.json", JSON.stringify(value));

/** Runs `hangar launch` in this process against no platform at all (--no-create needs none). */
async function launch(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const res = { code: 0, stdout: "", stderr: "" };
  const ctx = createContext({
    env: { HANGAR_HOME: join(dir, ".hangar-home") },
    cwd: dir,
    out: (text) => {
      res.stdout += text;
    },
    err: (text) => {
      res.stderr += text;
    },
  });
  res.code = await runCli(["launch", ...args], ctx);
  return res;
}

describe("detectProject", () => {
  it("prefers an existing Dockerfile and reads its EXPOSE", async () => {
    await write("Dockerfile", "FROM nginx\nEXPOSE 8081/tcp\n");
    await pkg({ scripts: { start: "node ." } });
    expect(await detectProject(dir)).toEqual({ kind: "dockerfile", exposedPort: 8081 });
  });

  it("detects Next.js by its dependency, else a start script, else main", async () => {
    await pkg({ name: "@acme/Site", dependencies: { next: "15", react: "19" } });
    expect(await detectProject(dir)).toMatchObject({
      kind: "node",
      framework: "next",
      packageName: "@acme/Site",
    });
    await pkg({ scripts: { start: "node server.js" } });
    expect(await detectProject(dir)).toEqual({
      kind: "node",
      framework: "plain",
      start: { script: "start" },
      hasDependencies: false,
    });
    await pkg({ main: "index.js", dependencies: { express: "5" } });
    expect(await detectProject(dir)).toMatchObject({ start: { main: "index.js" }, hasDependencies: true });
  });

  it("says what is missing when it cannot tell", async () => {
    await expect(detectProject(dir)).rejects.toThrow(/no Dockerfile and no package\.json/);
    await pkg({ name: "lib" });
    await expect(detectProject(dir)).rejects.toThrow(/no start script and no main/);
  });
});

describe("generated files", () => {
  it("writes a Dockerfile for a plain Node app", () => {
    const project = {
      kind: "node",
      framework: "plain",
      start: { main: "server.js" },
      hasDependencies: true,
    } as const;
    expect(nodeDockerfile(project, 8080, "20")).toBe(
      [
        "FROM node:20",
        "WORKDIR /app",
        "COPY package*.json ./",
        "RUN npm install --omit=dev",
        "COPY . .",
        "ENV PORT=8080",
        "EXPOSE 8080",
        'CMD ["node", "server.js"]',
        "",
      ].join("\n"),
    );
    const noDeps = { ...project, start: { script: "start" }, hasDependencies: false } as const;
    expect(nodeDockerfile(noDeps, 8080, "20")).not.toContain("RUN npm install");
    expect(nodeDockerfile(noDeps, 8080, "20")).toContain('CMD ["npm", "start"]');
  });

  it("builds Next.js with next build and serves it with next start", () => {
    const next = {
      kind: "node",
      framework: "next",
      start: { script: "start" },
      hasDependencies: true,
    } as const;
    const text = nodeDockerfile(next, appPort(next, undefined), "22");
    expect(text).toContain("FROM node:22\n");
    expect(text).toContain("RUN npm install\nCOPY . .\nRUN npx next build\n");
    expect(text).toContain("EXPOSE 3000\n");
    expect(text).toContain('CMD ["npx", "next", "start"]');
  });

  it("picks the port from --port, else EXPOSE, else 8080", () => {
    expect(appPort({ kind: "dockerfile", exposedPort: 5000 }, 7000)).toBe(7000);
    expect(appPort({ kind: "dockerfile", exposedPort: 5000 }, undefined)).toBe(5000);
    expect(appPort({ kind: "dockerfile" }, undefined)).toBe(8080);
    expect(exposedPort("FROM x\n# EXPOSE 1\n  expose 4000 4001\n")).toBe(4000);
  });

  it("writes a hangar.toml that parses with no warnings and scales to zero", () => {
    const { config, warnings } = parseAppConfig(
      hangarToml({ app: "web", region: "local", port: 3000 }),
      "hangar.toml",
    );
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({
      app: "web",
      primary_region: "local",
      build: { dockerfile: "Dockerfile" },
      http_service: {
        internal_port: 3000,
        force_https: false,
        auto_stop_machines: "stop",
        auto_start_machines: true,
        min_machines_running: 0,
        concurrency: { type: "connections", soft_limit: 20 },
        checks: [{ path: "/", method: "GET" }],
      },
    });
  });

  it("makes app names from package and folder names", () => {
    expect(appNameFrom("@acme/My_Site")).toBe("my-site");
    expect(appNameFrom("--Hello World!--")).toBe("hello-world");
    expect(appNameFrom("日本")).toBe("app");
    expect(appNameFrom("a".repeat(80))).toHaveLength(63);
  });
});

describe("hangar launch --no-create", () => {
  it("writes Dockerfile, .dockerignore and hangar.toml for a Node app", async () => {
    await pkg({ name: "shop", scripts: { start: "node server.js" }, dependencies: { express: "5" } });
    const res = await launch(["--no-create", "--region", "ams", "--port", "5000"]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    expect(res.stdout).toContain(
      "Detected a Node app\nWrote Dockerfile\nWrote .dockerignore\nWrote hangar.toml\n",
    );
    const dockerfile = await readFile(join(dir, "Dockerfile"), "utf8");
    expect(dockerfile).toContain(`FROM node:${process.versions.node.split(".")[0]}\n`);
    expect(dockerfile).toContain("EXPOSE 5000\n");
    expect(await readFile(join(dir, ".dockerignore"), "utf8")).toBe("node_modules\n.git\n");
    const { config } = parseAppConfig(await readFile(join(dir, "hangar.toml"), "utf8"), "hangar.toml");
    expect(config).toMatchObject({
      app: "shop",
      primary_region: "ams",
      http_service: { internal_port: 5000 },
    });
  });

  it("keeps existing files unless --yes, and uses an existing Dockerfile as it is", async () => {
    await write("Dockerfile", "FROM nginx\nEXPOSE 80\n");
    await write("hangar.toml", 'app = "kept"\n');
    const res = await launch(["--no-create"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(
      "Found a Dockerfile (EXPOSE 80)\nhangar.toml exists, kept it (pass --yes to overwrite)\n",
    );
    expect(await readFile(join(dir, "hangar.toml"), "utf8")).toBe('app = "kept"\n');
    expect(await readFile(join(dir, "Dockerfile"), "utf8")).toBe("FROM nginx\nEXPOSE 80\n");

    const again = await launch(["--no-create", "--yes", "--name", "fresh"]);
    expect(again.stdout).toContain("Overwrote hangar.toml\n");
    const { config } = parseAppConfig(await readFile(join(dir, "hangar.toml"), "utf8"), "hangar.toml");
    expect(config).toMatchObject({ app: "fresh", http_service: { internal_port: 80 } });
  });

  it("refuses an app name the platform would refuse", async () => {
    await write("Dockerfile", "FROM nginx\n");
    const res = await launch(["--no-create", "--name", "Bad.Name"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^Error: Bad\.Name is not a valid app name.*\npass --name <app>\n$/);
  });

  it("writes an [edge] hangar.toml and no Dockerfile for an edge app", async () => {
    await pkg({ name: "@acme/router", main: "src/router.js" });
    await write("src/router.js", 'fly.http.respondWith(() => new Response("hi"));\n');
    expect(await detectProject(dir)).toEqual({
      kind: "edge",
      entry: "src/router.js",
      packageName: "@acme/router",
    });
    const res = await launch(["--no-create"]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    expect(res.stdout).toContain("Detected an edge app (src/router.js)");
    expect(res.stdout).toContain("Wrote hangar.toml\n");
    expect(res.stdout).not.toContain("Dockerfile");
    const parsed = parseAppConfig(await readFile(join(dir, "hangar.toml"), "utf8"), "hangar.toml");
    expect(parsed.warnings).toEqual([]);
    expect(parsed.config).toEqual({
      app: "router",
      primary_region: "local",
      edge: { entry: "src/router.js", cpu_ms: 50, memory_mb: 128 },
    });
    // A Node server that registers no handler stays a Node app.
    await rm(join(dir, "hangar.toml"));
    await write("src/router.js", "require('http').createServer().listen(8080);\n");
    expect((await detectProject(dir)).kind).toBe("node");
  });
});
