#!/usr/bin/env bash
# Installs what `npm start` and `npm test` need and is missing, then builds.
# Quick when nothing is missing: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is needed (found $(node --version)); install it from https://nodejs.org"

is_debian_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

# System packages: nats-server, PostgreSQL (Debian keeps initdb/pg_ctl under /usr/lib/postgresql/*/bin),
# bubblewrap (the builder's RUN steps and sandboxed machines), attr (overlayfs opaque-dir xattrs in
# layers), and skopeo and umoci (tools no one here wrote, that check our images and registry in tests).
have_postgres() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
have_postgres || missing+=(postgresql)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
# crun runs machines and build steps from an OCI runtime spec, catatonit is their init, and
# containers-common has podman's default seccomp profile; the tests build a static sandbox probe.
command -v crun >/dev/null 2>&1 || missing+=(crun)
[ -x /usr/bin/catatonit ] || missing+=(catatonit)
[ -f /usr/share/containers/seccomp.json ] || missing+=(golang-github-containers-common)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# isolated-vm (the edge runtime, libs/edge) is built by node-gyp at pnpm install: a C++ compiler,
# make and python3 (Node's headers: /usr/include/node, .npmrc nodedir).
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
command -v setfattr >/dev/null 2>&1 || missing+=(attr)
# nftables: each host agent's firewall between machines, the host and the internet (6PN, NAT).
command -v nft >/dev/null 2>&1 || missing+=(nftables)
# Issue 14's images: mmdebstrap makes the platform's debian/node/postgres bases, buildah builds the
# image corpus to compare with Hangar's builder, docker-registry (Debian's distribution) with
# htpasswd (apache2-utils) is the tests' real registry (openssl makes its token server's
# certificate), zstd unpacks zstd layers.
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Volumes: ext4 image files (e2fsprogs: mkfs.ext4, e2fsck, resize2fs, dumpe2fs) on loop devices
# (mount: losetup), frozen for snapshots (util-linux: fsfreeze, fallocate), compressed by zstd.
[ -x /sbin/mkfs.ext4 ] && [ -x /sbin/resize2fs ] || missing+=(e2fsprogs)
[ -x /sbin/losetup ] || missing+=(mount)
[ -x /sbin/fsfreeze ] && command -v fallocate >/dev/null 2>&1 || missing+=(util-linux)
# The web dashboard's browser test: playwright-core drives Debian's chromium (headless).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Issue 17's dashboards test: a real Prometheus scrapes a running platform and answers every PromQL
# query of the generated Grafana dashboards (tests/observability/prometheus.ts).
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# Issue 18's podman run of the k8s manifests (tests/deploy/podman.e2e.test.ts): `podman kube play`
# plays the rendered Deployments' pods from the local images (conmon, CNI plugins and the pause image's
# catatonit come with it).
command -v podman >/dev/null 2>&1 || missing+=(podman)
if [ ${#missing[@]} -gt 0 ]; then
  if is_debian_root; then
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}. On Debian/Ubuntu run: sudo apt-get install -y ${missing[*]}; on macOS: brew install nats-server postgresql (bubblewrap needs Linux)"
  fi
fi

# pnpm: the workspace's package manager (corepack cannot be relied on offline).
# Another version is replaced: pnpm 12 switching itself to the pinned 10.x fails against npm's
# registry (ERR_PNPM_BAD_CONFIG_DEP, it looks for platform packages 10.x never published).
have_pnpm=$(pnpm --version 2>/dev/null || true)
if [ "$have_pnpm" != "$PNPM_VERSION" ]; then
  say "installing pnpm@$PNPM_VERSION with npm${have_pnpm:+ (found pnpm $have_pnpm)}"
  npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null 2>&1 ||
    die "could not install pnpm; run: npm install -g pnpm@$PNPM_VERSION (with sudo if npm's global folder is not yours)"
fi

# node_modules: install when missing or when the lockfile changed since the last install.
stamp=node_modules/.modules.yaml
if [ ! -f "$stamp" ] || [ pnpm-lock.yaml -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  say "installing node modules"
  if [ -n "${CI:-}" ]; then pnpm install --frozen-lockfile --reporter=silent; else pnpm install --reporter=silent; fi
fi

# Build: protobuf code generation (skips when up to date) and tsc --build (incremental).
pnpm -s run build
