#!/usr/bin/env bash
# The whole test suite: installs the Debian/npm test tools it needs when they are missing,
# builds the release binary once, and runs every test against it.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
# need COMMAND PACKAGE: queue PACKAGE when COMMAND is on neither PATH nor /usr/sbin.
need() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$2")
}
need mosquitto_pub mosquitto-clients
need mosquitto mosquitto
need pdftotext poppler-utils
need systemd-analyze systemd
need qemu-aarch64 qemu-user
need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
need arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf
need file file
need curl curl
need jq jq
need openssl openssl
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing test tools: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The report tests read workbooks with openpyxl, from PyPI for whichever python3 is on PATH.
if ! python3 -c 'import openpyxl' 2>/dev/null; then
  echo "== installing openpyxl"
  python3 -m pip install --quiet openpyxl 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages openpyxl
fi

# The alarm e-mail test receives mail with aiosmtpd, a local SMTP server from PyPI.
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "== installing aiosmtpd"
  python3 -m pip install --quiet aiosmtpd 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd
fi

# The metrics test parses /metrics with the Prometheus project's own Python parser.
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  echo "== installing prometheus_client"
  python3 -m pip install --quiet prometheus_client 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages prometheus_client
fi

echo "== build (release, once)"
cargo build --release --all-targets --locked

echo "== unit and black-box tests"
cargo test --release --locked

if [ -x scripts/test-browser.sh ]; then
  echo "== browser: the operator's day in Debian's chromium"
  scripts/test-browser.sh
fi

if [ -x scripts/test-packaging.sh ]; then
  echo "== packaging: systemd unit, installer, ARM builds under emulation"
  scripts/test-packaging.sh
fi
echo "== all tests passed"
