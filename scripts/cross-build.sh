#!/usr/bin/env bash
# Build the Raspberry Pi binaries with plain cargo and Debian's cross toolchains (no Docker).
#
#   scripts/cross-build.sh [aarch64|armv7|all]      (default: all)
#
#   aarch64  aarch64-unknown-linux-musl      static binary: 64-bit Raspberry Pi OS (bullseye,
#                                            bookworm and later), Pi 3/4/5/Zero 2 W
#   armv7    armv7-unknown-linux-gnueabihf   glibc binary: 32-bit Raspberry Pi OS on a Pi 2 or
#                                            newer; linked against Debian 12's glibc, it needs
#                                            glibc 2.34 (bookworm), the build prints the floor
#
# Both use the `pi` profile of Cargo.toml (fat LTO, size-optimised, stripped). Output:
#   $CARGO_TARGET_DIR/<triple>/pi/biogestor     (CARGO_TARGET_DIR default: target/arm)
# A separate target dir keeps these builds from waiting on the lock of a native build in
# target/ and shares the host-side build scripts between the two ARM targets.
#
# Missing pieces are installed first (Debian/Ubuntu): the cross gcc packages (linker, plus the
# C compiler for the one assembly file of the `psm` crate), qemu-user for scripts/arm-smoke.sh,
# and the rustup std of each target. Linkers and C compilers are passed as environment
# variables (CARGO_TARGET_<TRIPLE>_LINKER, CC_<triple>, AR_<triple>); a value already set in the
# environment wins, so other toolchains (e.g. a musl-cross gcc) can be used instead.
#
# Other environment: CARGO (default cargo), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO=${CARGO:-cargo}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/arm}
PROFILE=pi

die() { echo "cross-build: error: $*" >&2; exit 1; }
log() { echo "cross-build: $*"; }

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

WHAT=${1:-all}
case $WHAT in
    aarch64) ARCHES=(aarch64) ;;
    armv7) ARCHES=(armv7) ;;
    all) ARCHES=(aarch64 armv7) ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown target '$WHAT' (expected aarch64, armv7 or all)" ;;
esac

# --- prerequisites -------------------------------------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

apt_ensure() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get: install them by hand"
    log "installing ${missing[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; then
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
}

rust_target_ensure() {
    local t=$1
    command -v rustup >/dev/null 2>&1 || {
        # Without rustup the std may still be present (e.g. distribution packages).
        log "rustup not found; assuming the $t standard library is installed"
        return 0
    }
    if ! rustup target list --installed | grep -qx "$t"; then
        log "adding rust target $t"
        rustup target add "$t"
    fi
}

# --- per-architecture settings -------------------------------------------------------------

triple_of() {
    case $1 in
        aarch64) echo aarch64-unknown-linux-musl ;;
        armv7) echo armv7-unknown-linux-gnueabihf ;;
    esac
}

tool_prefix_of() {
    case $1 in
        aarch64) echo aarch64-linux-gnu ;;
        armv7) echo arm-linux-gnueabihf ;;
    esac
}

prepare() {
    local arch=$1
    case $arch in
        aarch64) apt_ensure gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user file ;;
        armv7) apt_ensure gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user file ;;
    esac
    rust_target_ensure "$(triple_of "$arch")"
}

# Exports the linker / C compiler / archiver for one target unless the caller set them.
# aarch64-musl: Rust's musl std is self-contained (its own crt objects and libc.a), so the
# glibc cross gcc works as the linker and the result is fully static. psm only assembles
# src/arch/aarch_aapcs64.s (no libc headers), so the glibc cross gcc is also fine as CC.
set_toolchain_env() {
    local arch=$1 triple prefix up low
    triple=$(triple_of "$arch")
    prefix=$(tool_prefix_of "$arch")
    up=$(echo "$triple" | tr 'a-z-' 'A-Z_')
    low=${triple//-/_}
    local linker_var="CARGO_TARGET_${up}_LINKER" cc_var="CC_${low}" ar_var="AR_${low}"
    export "${linker_var}=${!linker_var:-${prefix}-gcc}"
    export "${cc_var}=${!cc_var:-${prefix}-gcc}"
    export "${ar_var}=${!ar_var:-${prefix}-ar}"
    command -v "${!linker_var}" >/dev/null 2>&1 || die "linker ${!linker_var} not found"
    log "$triple: linker ${!linker_var}, CC ${!cc_var}"
}

human_mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1000000 }'; }

SUMMARY=()

build_one() {
    local arch=$1 triple prefix bin t0 t1 secs size stripped_size finfo floor
    triple=$(triple_of "$arch")
    prefix=$(tool_prefix_of "$arch")
    prepare "$arch"
    set_toolchain_env "$arch"

    log "building $triple (profile $PROFILE, target dir $CARGO_TARGET_DIR)"
    t0=$(date +%s)
    (cd "$ROOT" && "$CARGO" build --locked --profile "$PROFILE" --target "$triple" --bin biogestor) \
        || die "cargo build for $triple failed"
    t1=$(date +%s)
    secs=$((t1 - t0))

    bin=$CARGO_TARGET_DIR/$triple/$PROFILE/biogestor
    [ -x "$bin" ] || die "expected binary not found: $bin"
    size=$(stat -c %s "$bin")
    finfo=$(file -b "$bin")
    if echo "$finfo" | grep -q 'not stripped'; then
        local tmp
        tmp=$(mktemp)
        "${prefix}-strip" -o "$tmp" "$bin"
        stripped_size=$(stat -c %s "$tmp")
        rm -f "$tmp"
    else
        stripped_size=$size
    fi
    log "$triple: $finfo"
    case $triple in
        *-gnu*)
            floor=$("${prefix}-objdump" -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
            log "$triple: highest glibc symbol ${floor:-none} (the target system needs at least that glibc)"
            ;;
    esac
    SUMMARY+=("$(printf '%-32s %-10s %6ss  %s' "$triple" "$(human_mb "$stripped_size")" "$secs" "$bin")")
}

for a in "${ARCHES[@]}"; do
    build_one "$a"
done

echo
echo "target                           stripped   build   binary"
for line in "${SUMMARY[@]}"; do echo "$line"; done
