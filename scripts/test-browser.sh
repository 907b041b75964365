#!/usr/bin/env bash
# Browser tests of the bundled web UI: Debian's Chromium driven by playwright-core against the
# release binary. Installs what is missing (never a browser build of playwright's own).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "== installing node and npm (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "tests/browser needs Node.js 20 or newer (playwright-core); found $(node -v)" >&2
  exit 1
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "== npm ci (tests/browser)"
  # playwright-core downloads no browser; the variable makes sure no install hook tries.
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

BIN="${BIOGESTOR_BIN:-target/release/biogestor}"
if [ ! -x "$BIN" ]; then
  echo "== cargo build --release"
  cargo build --release --locked
fi

echo "== browser tests"
mkdir -p target/screenshots
BIOGESTOR_BIN="$BIN" node --test tests/browser/
