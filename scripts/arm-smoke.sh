#!/usr/bin/env bash
# Smoke test of the Raspberry Pi binaries under qemu user-mode emulation.
#
#   scripts/arm-smoke.sh [AARCH64_BIN [ARMV7_BIN]]
#
# aarch64 (default $CARGO_TARGET_DIR/aarch64-unknown-linux-musl/pi/biogestor, CARGO_TARGET_DIR
# default target/arm, as written by scripts/cross-build.sh):
#   --version; linkage (static, or for a glibc build a glibc floor <= SMOKE_GLIBC_MAX, 2.31 =
#   Raspberry Pi OS bullseye); check-config on the repo's config.toml; then `serve` on free
#   loopback ports with a temporary data dir, wait for /healthz, publish one reading with the
#   NATIVE binary's `simulate`, wait until it is listed by /api/dashboard/readings/ and counted
#   by /api/dashboard/stats/, stop with SIGTERM and expect exit status 0.
# armv7 (default $CARGO_TARGET_DIR/armv7-unknown-linux-gnueabihf/pi/biogestor):
#   --version under qemu-arm -L /usr/arm-linux-gnueabihf, prints its glibc floor, and the same
#   serve round trip (SMOKE_ARMV7_SERVE=0 skips it). Skipped with a notice if not built, unless
#   SMOKE_REQUIRE_ARMV7=1.
#
# Environment:
#   BIOGESTOR_NATIVE       host binary used as MQTT publisher (default target/release/biogestor)
#   SMOKE_CONFIG           config file (default: the repo's config.toml)
#   SMOKE_MQTT_USER / SMOKE_MQTT_PASSWORD   broker credentials (default: the config's
#                          `sensor` / `cambiar-esta-clave`); SMOKE_TOPIC (default Prueba)
#   SMOKE_ADMIN_PASSWORD   password of the administrator the smoke test creates with
#                          `biogestor user add` before serving, and logs in as
#   SMOKE_START_TIMEOUT (60), SMOKE_READING_TIMEOUT (30), SMOKE_STOP_TIMEOUT (30)   seconds
#
# When sourced, only defines the functions (serve_smoke is reused by scripts/test-packaging.sh).
set -euo pipefail

SMOKE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMOKE_TD=${CARGO_TARGET_DIR:-$SMOKE_ROOT/target/arm}
BIOGESTOR_NATIVE=${BIOGESTOR_NATIVE:-$SMOKE_ROOT/target/release/biogestor}
SMOKE_CONFIG=${SMOKE_CONFIG:-$SMOKE_ROOT/config.toml}
SMOKE_MQTT_USER=${SMOKE_MQTT_USER:-sensor}
SMOKE_MQTT_PASSWORD=${SMOKE_MQTT_PASSWORD:-cambiar-esta-clave}
SMOKE_TOPIC=${SMOKE_TOPIC:-Prueba}
SMOKE_ADMIN_PASSWORD=${SMOKE_ADMIN_PASSWORD:-Prueba-Emulada-2026}
SMOKE_START_TIMEOUT=${SMOKE_START_TIMEOUT:-60}
SMOKE_READING_TIMEOUT=${SMOKE_READING_TIMEOUT:-30}
SMOKE_STOP_TIMEOUT=${SMOKE_STOP_TIMEOUT:-30}
SMOKE_GLIBC_MAX=${SMOKE_GLIBC_MAX:-2.31}

smoke_log() { echo "arm-smoke: $*"; }
smoke_die() { echo "arm-smoke: FAIL: $*" >&2; exit 1; }

smoke_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else smoke_die "need root (or sudo) to run: $*"
    fi
}

# Installs the Debian packages among "$@" that are missing.
smoke_apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || smoke_die "missing packages: ${missing[*]}"
    smoke_log "installing ${missing[*]}"
    if ! smoke_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; then
        smoke_as_root apt-get update -q >/dev/null
        smoke_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

# A TCP port on 127.0.0.1 nobody listens on, not in the space-separated list "$1".
smoke_free_port() {
    local avoid=" ${1:-} " p i
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 40000))
        case $avoid in *" $p "*) continue ;; esac
        if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    smoke_die "no free TCP port found"
}

# curl against the server with the optional Bearer token; prints the body.
smoke_get() {
    local url=$1
    local args=(-fsS --max-time 10)
    [ -n "${SMOKE_BEARER:-}" ] && args+=(-H "Authorization: Bearer $SMOKE_BEARER")
    curl "${args[@]}" "$url"
}

# serve_smoke LABEL BIN [RUNNER...]
# Runs the serve round trip described at the top with "RUNNER... BIN serve ...". Runs in a
# subshell: on failure it exits non-zero after stopping the server and removing its temp dir.
serve_smoke() (
    set -euo pipefail
    local label=$1 bin=$2
    shift 2
    local runner=("$@")
    local tmp hp mp http pid="" t0 started healthy=0 code n total rc body

    tmp=$(mktemp -d)
    # shellcheck disable=SC2317  # runs from the EXIT trap
    _cleanup() {
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
        rm -rf "$tmp"
    }
    trap _cleanup EXIT
    _fail() {
        echo "arm-smoke: FAIL [$label]: $*" >&2
        if [ -s "$tmp/serve.log" ]; then
            echo "---- last lines of the server log ----" >&2
            tail -n 30 "$tmp/serve.log" >&2
            echo "--------------------------------------" >&2
        fi
        exit 1
    }

    [ -x "$BIOGESTOR_NATIVE" ] || _fail "native publisher $BIOGESTOR_NATIVE not found (cargo build --release, or set BIOGESTOR_NATIVE)"
    # Explicit checks throughout: callers run this in `if`/`||`, where `set -e` does not apply.
    hp=$(smoke_free_port) || _fail "no free TCP port"
    mp=$(smoke_free_port "$hp") || _fail "no free TCP port"
    http=http://127.0.0.1:$hp

    # The first administrator, created by the binary under test with the service stopped.
    env BIOGESTOR_STORAGE__DATA_DIR="$tmp/data" "${runner[@]}" "$bin" user add --username smoke-admin \
        --password "$SMOKE_ADMIN_PASSWORD" --email smoke@biogestor.example --admin --config "$SMOKE_CONFIG" \
        >"$tmp/useradd.log" 2>&1 || { cat "$tmp/useradd.log" >&2; _fail "user add under emulation failed"; }
    smoke_log "[$label] user add: $(cat "$tmp/useradd.log")"

    smoke_log "[$label] serve: http 127.0.0.1:$hp, mqtt 127.0.0.1:$mp, data $tmp/data"
    t0=$(date +%s)
    env BIOGESTOR_HTTP__BIND="127.0.0.1:$hp" \
        BIOGESTOR_MQTT__BIND="127.0.0.1:$mp" \
        BIOGESTOR_STORAGE__DATA_DIR="$tmp/data" \
        "${runner[@]}" "$bin" serve --config "$SMOKE_CONFIG" >"$tmp/serve.log" 2>&1 &
    pid=$!

    while [ $(($(date +%s) - t0)) -lt "$SMOKE_START_TIMEOUT" ]; do
        kill -0 "$pid" 2>/dev/null || { rc=0; wait "$pid" || rc=$?; _fail "server exited during start-up (status $rc)"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$http/healthz" || true)
        if [ "$code" = 200 ]; then healthy=1; break; fi
        sleep 1
    done
    [ "$healthy" = 1 ] || _fail "/healthz did not answer 200 within ${SMOKE_START_TIMEOUT}s"
    started=$(($(date +%s) - t0))
    smoke_log "[$label] /healthz 200 after ${started}s"

    # Every dashboard route needs a token: log in as the administrator created above.
    body=$(curl -fsS --max-time 30 -H 'Content-Type: application/json' \
        -d "{\"username\":\"smoke-admin\",\"password\":\"$SMOKE_ADMIN_PASSWORD\"}" \
        "$http/api/iniciar-sesion/") || _fail "login as the administrator failed"
    SMOKE_BEARER=$(jq -r '.access' <<<"$body")
    if [ -z "$SMOKE_BEARER" ] || [ "$SMOKE_BEARER" = null ]; then
        _fail "login answer has no access token: $body"
    fi

    timeout 60 "$BIOGESTOR_NATIVE" simulate --host 127.0.0.1 --port "$mp" --topic "$SMOKE_TOPIC" \
        --count 1 --interval 0 --qos 1 --seed 7 \
        --username "$SMOKE_MQTT_USER" --password "$SMOKE_MQTT_PASSWORD" >"$tmp/simulate.log" 2>&1 \
        || { cat "$tmp/simulate.log" >&2; _fail "publishing one reading with the native simulate failed"; }
    smoke_log "[$label] published 1 reading ($(tr '\n' ' ' <"$tmp/simulate.log"))"

    n=0
    t0=$(date +%s)
    while [ $(($(date +%s) - t0)) -lt "$SMOKE_READING_TIMEOUT" ]; do
        body=$(smoke_get "$http/api/dashboard/readings/?limit=10") \
            || _fail "GET /api/dashboard/readings/ failed"
        n=$(jq -r '.readings | length' <<<"$body") || _fail "readings answer is not the expected JSON: $body"
        [ "$n" -ge 1 ] && break
        sleep 1
    done
    [ "$n" -ge 1 ] || _fail "the published reading did not appear in /api/dashboard/readings/ within ${SMOKE_READING_TIMEOUT}s"
    smoke_log "[$label] reading visible: $(jq -c '.readings[0]' <<<"$body" | cut -c1-160)"

    body=$(smoke_get "$http/api/dashboard/stats/") || _fail "GET /api/dashboard/stats/ failed"
    total=$(jq -r '.lecturas_total' <<<"$body")
    [ "$total" -ge 1 ] 2>/dev/null || _fail "stats lecturas_total is '$total', expected >= 1"
    smoke_log "[$label] stats lecturas_total=$total"

    kill -TERM "$pid"
    t0=$(date +%s)
    while kill -0 "$pid" 2>/dev/null && [ $(($(date +%s) - t0)) -lt "$SMOKE_STOP_TIMEOUT" ]; do
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && _fail "server still running ${SMOKE_STOP_TIMEOUT}s after SIGTERM"
    rc=0
    wait "$pid" || rc=$?
    pid=""
    [ "$rc" = 0 ] || _fail "server exited with status $rc after SIGTERM (expected 0)"
    if grep -q 'panicked' "$tmp/serve.log"; then _fail "the server log reports a panic"; fi
    smoke_log "[$label] SIGTERM: clean exit 0 after $(($(date +%s) - t0))s"
)

# Prints the highest GLIBC_x.y symbol version a dynamic binary needs (empty if none).
smoke_glibc_floor() {
    local objdump=$1 bin=$2
    "$objdump" -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1 || true
}

smoke_version_check() {
    local label=$1
    shift
    local out want
    out=$("$@" --version 2>&1) || smoke_die "[$label] --version failed: $out"
    case $out in biogestor\ *) ;; *) smoke_die "[$label] unexpected --version output: $out" ;; esac
    if [ -x "$BIOGESTOR_NATIVE" ]; then
        want=$("$BIOGESTOR_NATIVE" --version 2>&1 || true)
        [ "$out" = "$want" ] || smoke_log "[$label] note: native binary reports '$want'"
    fi
    smoke_log "[$label] --version: $out"
}

smoke_main() {
    local aarch64_bin=${1:-${BIN_AARCH64:-$SMOKE_TD/aarch64-unknown-linux-musl/pi/biogestor}}
    local armv7_bin=${2:-${BIN_ARMV7:-$SMOKE_TD/armv7-unknown-linux-gnueabihf/pi/biogestor}}
    local finfo floor runner=() out

    smoke_apt_ensure qemu-user file curl jq iproute2 binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf

    # ---- aarch64 ----
    [ -f "$aarch64_bin" ] || smoke_die "aarch64 binary not found: $aarch64_bin (run scripts/cross-build.sh aarch64)"
    finfo=$(file -b "$aarch64_bin")
    smoke_log "[aarch64] $aarch64_bin: $finfo"
    case $finfo in *aarch64*) ;; *) smoke_die "[aarch64] $aarch64_bin is not an aarch64 executable" ;; esac
    case $finfo in
        *"statically linked"* | *"static-pie linked"*)
            smoke_log "[aarch64] statically linked: no glibc requirement"
            runner=(qemu-aarch64)
            ;;
        *"dynamically linked"*)
            floor=$(smoke_glibc_floor aarch64-linux-gnu-objdump "$aarch64_bin")
            [ -n "$floor" ] || smoke_die "[aarch64] dynamic binary without GLIBC_ symbol versions?"
            if [ "$(printf '%s\n%s\n' "$floor" "$SMOKE_GLIBC_MAX" | sort -V | tail -1)" != "$SMOKE_GLIBC_MAX" ]; then
                smoke_die "[aarch64] needs glibc $floor > $SMOKE_GLIBC_MAX: it would not start on Raspberry Pi OS bullseye"
            fi
            smoke_log "[aarch64] dynamically linked, glibc floor $floor <= $SMOKE_GLIBC_MAX"
            runner=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
            ;;
        *) smoke_die "[aarch64] cannot tell how $aarch64_bin is linked: $finfo" ;;
    esac

    smoke_version_check aarch64 "${runner[@]}" "$aarch64_bin"
    out=$("${runner[@]}" "$aarch64_bin" check-config --config "$SMOKE_CONFIG" 2>&1) \
        || smoke_die "[aarch64] check-config --config $SMOKE_CONFIG failed: $out"
    smoke_log "[aarch64] check-config: $out"
    serve_smoke aarch64 "$aarch64_bin" "${runner[@]}" || smoke_die "[aarch64] serve round trip failed"

    # ---- armv7 ----
    if [ ! -f "$armv7_bin" ]; then
        [ "${SMOKE_REQUIRE_ARMV7:-0}" = 1 ] && smoke_die "armv7 binary not found: $armv7_bin"
        smoke_log "[armv7] SKIPPED: $armv7_bin not built (scripts/cross-build.sh armv7)"
    else
        finfo=$(file -b "$armv7_bin")
        smoke_log "[armv7] $armv7_bin: $finfo"
        case $finfo in *"ARM,"*) ;; *) smoke_die "[armv7] $armv7_bin is not a 32-bit ARM executable" ;; esac
        case $finfo in
            *"dynamically linked"*)
                floor=$(smoke_glibc_floor arm-linux-gnueabihf-objdump "$armv7_bin")
                smoke_log "[armv7] needs glibc >= ${floor:-?} on the target"
                runner=(qemu-arm -L /usr/arm-linux-gnueabihf)
                ;;
            *) runner=(qemu-arm) ;;
        esac
        smoke_version_check armv7 "${runner[@]}" "$armv7_bin"
        if [ "${SMOKE_ARMV7_SERVE:-1}" = 1 ]; then
            serve_smoke armv7 "$armv7_bin" "${runner[@]}" || smoke_die "[armv7] serve round trip failed"
        fi
    fi
    smoke_log "all checks passed"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    smoke_main "$@"
fi
