#!/usr/bin/env bash
# Wire compatibility of proto/ (buf breaking, WIRE_JSON rules): the working tree against the
# previous commit, and against HEAD when proto/ has uncommitted changes. A field renumbered, retyped
# or removed without being reserved fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=node_modules/.bin/buf

compare() {
  local ref=$1
  if ! git cat-file -e "$ref:proto/buf.yaml" 2>/dev/null; then
    echo "[proto] $ref has no proto/ module: nothing to compare"
    return 0
  fi
  "$buf" breaking proto --against ".git#ref=$ref,subdir=proto"
  echo "[proto] wire-compatible with $ref ($(git rev-parse --short "$ref"))"
}

if git rev-parse -q --verify HEAD~1 >/dev/null; then compare HEAD~1; fi
if git rev-parse -q --verify HEAD >/dev/null && ! git diff --quiet HEAD -- proto; then compare HEAD; fi
