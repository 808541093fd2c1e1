#!/usr/bin/env bash
# Installs Renovate (pinned in tools/renovate/package-lock.json) into .cache/renovate for its config
# validator (`make lint`). Idempotent: skipped when the installed lock file matches the committed one.
# Install scripts are not run (re2, a native module, would be compiled): the validator then uses
# JavaScript regular expressions (RENOVATE_X_IGNORE_RE2=true in the Makefile).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.cache/renovate}
if ! command -v npm >/dev/null; then
  echo "install-renovate: npm is not installed. Fix: install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
if [ -x "$dest/node_modules/.bin/renovate-config-validator" ] \
  && cmp -s "$root/tools/renovate/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
rm -rf "$dest" && mkdir -p "$dest"
cp "$root/tools/renovate/package.json" "$root/tools/renovate/package-lock.json" "$dest/"
echo "install-renovate: installing the pinned Renovate into $dest (about 350 MB, a minute)"
(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
