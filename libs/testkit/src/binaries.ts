import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { MissingBinaryError } from "./errors.js";

const POSTGRES_TOOLS = new Set(["initdb", "pg_ctl", "pg_isready", "postgres"]);
// Debian keeps the PostgreSQL server tools off PATH, one directory per major version.
const DEBIAN_POSTGRES_ROOT = "/usr/lib/postgresql";

const POSTGRES_INSTALL =
  "apt-get install -y postgresql (Debian/Ubuntu) or brew install postgresql@16 (macOS)";
const INSTALL_HINTS: Readonly<Record<string, string>> = {
  "nats-server": "apt-get install -y nats-server (Debian/Ubuntu) or brew install nats-server (macOS)",
  runuser: "apt-get install -y util-linux (Debian/Ubuntu)",
};

/** Returns the absolute path of an executable, or throws MissingBinaryError with an install hint. */
export function findBinary(name: string): string {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((dir) => dir !== "");
  const postgresTool = POSTGRES_TOOLS.has(name);
  const debianDir = postgresTool ? debianPostgresBin() : undefined;
  if (debianDir !== undefined) dirs.push(debianDir);

  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }

  const where = postgresTool ? `on PATH or in ${DEBIAN_POSTGRES_ROOT}/*/bin` : "on PATH";
  const hint = postgresTool
    ? POSTGRES_INSTALL
    : (INSTALL_HINTS[name] ?? `install ${name} and put it on PATH`);
  throw new MissingBinaryError(name, `${name} not found ${where}. Install it: ${hint}`);
}

function debianPostgresBin(): string | undefined {
  let versions: string[];
  try {
    versions = readdirSync(DEBIAN_POSTGRES_ROOT);
  } catch {
    return undefined;
  }
  const highest = versions.sort((a, b) => b.localeCompare(a, "en", { numeric: true }))[0];
  return highest === undefined ? undefined : join(DEBIAN_POSTGRES_ROOT, highest, "bin");
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
