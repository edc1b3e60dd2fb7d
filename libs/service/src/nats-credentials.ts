import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createUser, fromSeed, Prefix } from "@nats-io/nkeys";
import { Codec } from "@nats-io/nkeys/lib/codec.js";
import { type NatsUserSpec, OPERATOR_USER, permissionsOf } from "./nats-permissions.js";

/** The seeds of a platform's NATS users on disk and the server configuration that admits them. */
export interface NatsCredentials {
  /** The folder holding one seed file per user. */
  dir: string;
  /** The nats-server `authorization { ... }` block: each user's nkey and permissions. */
  authorization: string;
  /** The seed file of a user (what `HANGAR_NATS_CREDS` points at). */
  credsFile(user: string): string;
}

/** The seed file of `user` in a credentials folder. */
export function credsFileOf(dir: string, user: string): string {
  return join(dir, `${user}.nk`);
}

/**
 * Makes (or reuses) an nkey pair per user, the operator included, writes each seed to
 * `<dir>/<user>.nk` (mode 0600), and returns the server's authorization block. Seeds that already
 * exist are kept, so a restarted platform's services keep their credentials.
 */
export async function writeNatsCredentials(
  dir: string,
  users: readonly NatsUserSpec[],
): Promise<NatsCredentials> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const entries: AuthorizedUser[] = [];
  for (const spec of users) entries.push({ spec, publicKey: await ensureSeed(dir, spec.user) });
  entries.push({ spec: undefined, publicKey: await ensureSeed(dir, OPERATOR_USER) });
  return {
    dir,
    authorization: natsAuthorization(entries),
    credsFile: (user) => credsFileOf(dir, user),
  };
}

/** A user admitted by the server: with its table entry, or the operator (no entry: every subject). */
export interface AuthorizedUser {
  spec: NatsUserSpec | undefined;
  /** The user's public nkey (`U...`). */
  publicKey: string;
}

/** The nats-server (2.9 and later) `authorization` block for these users. Nobody else gets in. */
export function natsAuthorization(users: readonly AuthorizedUser[]): string {
  const lines = ["authorization {", "  users = ["];
  const specs = users.flatMap((u) => (u.spec === undefined ? [] : [u.spec]));
  for (const { spec, publicKey } of users) {
    if (spec === undefined) {
      lines.push(`    # ${OPERATOR_USER}: every subject`, `    { nkey: ${JSON.stringify(publicKey)} }`);
      continue;
    }
    const p = permissionsOf(spec, specs);
    // Subjects are quoted: unquoted, `$JS...` would read as a config variable.
    const list = (subjects: string[]) => `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`;
    const deny = p.denyPublish.length > 0 ? `, deny: ${list(p.denyPublish)}` : "";
    lines.push(
      `    # ${spec.user}: ${spec.role}`,
      `    { nkey: ${JSON.stringify(publicKey)}, permissions: {`,
      `      publish: { allow: ${list(p.publish)}${deny} }`,
      `      subscribe: { allow: ${list(p.subscribe)} }`,
      ...(p.allowResponses ? ["      allow_responses: true"] : []),
      "    } }",
    );
  }
  lines.push("  ]", "}");
  return `${lines.join("\n")}\n`;
}

/**
 * A user public key (`U...`) that nobody holds the seed of: a hash of `label` taken as the key's
 * bytes. No seed was ever made for it, and finding one means solving ed25519's discrete logarithm,
 * so a server that admits it admits nobody. Deterministic: a generated placeholder file stays the same.
 */
export function unheldPublicKey(label: string): string {
  const bytes = new Uint8Array(createHash("sha256").update(`hangar unheld nkey: ${label}`).digest());
  return new TextDecoder().decode(Codec.encode(Prefix.User, bytes));
}

/**
 * The authorization block of `users` (and the operator) as `writeNatsCredentials` makes it, with
 * unheld keys (`unheldPublicKey`): the permissions are the real ones, and nobody gets in. A
 * template committed beside manifests, which an environment replaces with its own users' keys.
 */
export function placeholderAuthorization(users: readonly NatsUserSpec[]): string {
  return natsAuthorization([
    ...users.map((spec) => ({ spec, publicKey: unheldPublicKey(spec.user) })),
    { spec: undefined, publicKey: unheldPublicKey(OPERATOR_USER) },
  ]);
}

async function ensureSeed(dir: string, user: string): Promise<string> {
  const file = credsFileOf(dir, user);
  const existing = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (existing !== undefined) {
    // A seed copied in or restored from a backup may have come with a looser mode.
    await chmod(file, 0o600);
    return fromSeed(new TextEncoder().encode(existing.trim())).getPublicKey();
  }
  const pair = createUser();
  await writeFile(file, `${new TextDecoder().decode(pair.getSeed())}\n`, { mode: 0o600 });
  return pair.getPublicKey();
}
