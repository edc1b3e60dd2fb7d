import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LayerFile } from "../layer.js";
import { POSTGRES_MAJOR } from "./catalog.js";
import { BASE_EPOCH, DEBIAN_EXTRA_PACKAGES, debianLayer, finishDebianRootfs, mmdebstrap } from "./debian.js";

/** The uid and gid of the official postgres image's `postgres` user. */
export const POSTGRES_UID = 999;

/** Where the database lives unless PGDATA says otherwise (a volume of the image). */
export const POSTGRES_DATA = "/var/lib/postgresql/data";

/**
 * The postgres image's entrypoint, honouring the official image's variables: on an empty PGDATA it
 * runs initdb (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_INITDB_ARGS), opens TCP connections with
 * POSTGRES_HOST_AUTH_METHOD (scram-sha-256 by default), creates POSTGRES_DB and runs
 * /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz; then it runs the server as user postgres.
 */
export const POSTGRES_ENTRYPOINT = `#!/bin/bash
# Hangar's postgres base image entrypoint.
set -Eeuo pipefail

# Options first (-c shared_buffers=...) are the server's.
if [ "\${1:0:1}" = "-" ]; then
  set -- postgres "$@"
fi
if [ "$1" != "postgres" ]; then
  exec "$@"
fi

export PGDATA="\${PGDATA:-${POSTGRES_DATA}}"
if [ "$(id -u)" = "0" ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  auth="\${POSTGRES_HOST_AUTH_METHOD:-}"
  if [ -z "\${POSTGRES_PASSWORD:-}" ] && [ "$auth" != "trust" ]; then
    cat >&2 <<'EOM'
error: the database is uninitialized and POSTGRES_PASSWORD is not set.
  Set POSTGRES_PASSWORD to the superuser's password, or POSTGRES_HOST_AUTH_METHOD=trust to let
  every connection in without one (only where nothing untrusted can connect).
EOM
    exit 1
  fi
  user="\${POSTGRES_USER:-postgres}"
  db="\${POSTGRES_DB:-$user}"
  read -r -a extra <<< "\${POSTGRES_INITDB_ARGS:-}"
  if [ -n "\${POSTGRES_PASSWORD:-}" ]; then
    initdb --username="$user" --pwfile=<(printf '%s\\n' "$POSTGRES_PASSWORD") "\${extra[@]}"
  else
    initdb --username="$user" "\${extra[@]}"
  fi
  printf "\\nhost all all all %s\\n" "\${auth:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
  printf "\\nlisten_addresses = '*'\\n" >> "$PGDATA/postgresql.conf"

  # A server on the unix socket only, so nothing connects before the scripts have run.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user" --dbname postgres)
  if [ "$db" != "postgres" ]; then
    "\${psql[@]}" --set db="$db" <<< 'CREATE DATABASE :"db";'
  fi
  psql+=(--dbname "$db")
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
      *.sql) "\${psql[@]}" -f "$f" ;;
      *.sql.gz) gunzip -c "$f" | "\${psql[@]}" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
fi
exec "$@"
`;

/** Lines that give the postgres user and group the official uid/gid before the package would pick one. */
function postgresAccountHook(): string {
  const days = Math.floor(BASE_EPOCH.getTime() / 86_400_000);
  return [
    `echo 'postgres:x:${POSTGRES_UID}:${POSTGRES_UID}:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash' >> "$1/etc/passwd"`,
    `echo 'postgres:x:${POSTGRES_UID}:' >> "$1/etc/group"`,
    `echo 'postgres:!:${days}:0:99999:7:::' >> "$1/etc/shadow"`,
    `echo 'postgres:!::' >> "$1/etc/gshadow"`,
    // The image's entrypoint makes the cluster in PGDATA; Debian's package would make one of its own.
    `mkdir -p "$1/etc/postgresql-common"`,
    `echo 'create_main_cluster = false' > "$1/etc/postgresql-common/createcluster.conf"`,
  ].join(" && ");
}

/**
 * The postgres:<major> layer: Debian slim plus Debian's postgresql-<major> in one rootfs (one
 * mmdebstrap run), the entrypoint of our own, PGDATA made for the postgres user.
 */
export async function postgresLayer(work: string, onProgress: (line: string) => void): Promise<LayerFile> {
  const rootfs = join(work, "rootfs");
  await mmdebstrap(rootfs, [...DEBIAN_EXTRA_PACKAGES, `postgresql-${POSTGRES_MAJOR}`], onProgress, [
    `--essential-hook=${postgresAccountHook()}`,
  ]);
  await finishDebianRootfs(rootfs);
  await writeFile(join(rootfs, "usr/local/bin/docker-entrypoint.sh"), POSTGRES_ENTRYPOINT, { mode: 0o755 });
  await mkdir(join(rootfs, "docker-entrypoint-initdb.d"), { mode: 0o755 });
  await mkdir(join(rootfs, POSTGRES_DATA), { recursive: true });
  await chown(join(rootfs, POSTGRES_DATA), POSTGRES_UID, POSTGRES_UID);
  // As the official image: any uid the machine runs as may make its cluster there.
  await chmod(join(rootfs, POSTGRES_DATA), 0o1777);
  onProgress(`postgres:${POSTGRES_MAJOR}: packing the layer`);
  return debianLayer(rootfs, join(work, "layer.tar.gz"), true);
}
